"""The training-layout benchmark's short mode runs end to end on the default emotion model the suite builds: every
layout trains real steps in its own processes and the report carries each one's ratio to the baseline. Timings
are not asserted (they depend on the machine and its load)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import emotion_model_dir, output_tail, run_script


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_short_training_bench_times_every_layout(tmp_path: Path) -> None:
    done = run_script(
        "bench/bench_training.py", "--short", "--base", str(emotion_model_dir()), "--out", str(tmp_path), timeout=900
    )
    assert done.returncode == 0, output_tail(done)

    report = json.loads((tmp_path / "out" / "training.json").read_text())
    cores = report["cores"]
    assert cores == min(4, len(os.sched_getaffinity(0)))
    layouts = {layout["layout"]: layout for layout in report["layouts"]}
    assert [(layouts[name]["runs"], layouts[name]["threads_each"]) for name in layouts] == [
        (1, cores), (1, 1), (cores, 1), (1, cores)
    ]  # fmt: skip
    assert layouts["one run, every core"]["ratio_to_baseline"] == 1.0
    for layout in layouts.values():
        assert len(layout["members"]) == layout["runs"]
        assert all(m["steps"] == 3 and m["seconds"] > 0 for m in layout["members"])
    assert layouts["one run, every core, busy neighbour"]["busy_neighbour"] is True
    assert report["soup"]["soup_time_side_by_side_over_one_after_the_other"] > 0
    assert "runs side by side" in (tmp_path / "reports" / "training-short.md").read_text()


def test_bench_refuses_a_missing_checkpoint(tmp_path: Path) -> None:
    done = run_script("bench/bench_training.py", "--short", "--base", str(tmp_path / "none"), timeout=120)
    assert done.returncode == 2 and "no checkpoint there" in done.stderr
