"""The sentiment benchmark's short mode runs end to end on the default emotion model the suite builds: both CPU
precisions at every batch size, and the opt-in int8 mostly giving fp32's answers. Timings are not asserted (they
depend on the machine); the agreement is, because a site that turns int8 on serves those answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.bench_sentiment import BATCH_SIZES
from tests.conftest import emotion_model_dir, output_tail, run_script


@pytest.mark.integration
def test_short_sentiment_bench_times_both_precisions_and_they_agree(tmp_path: Path) -> None:
    done = run_script(
        "bench/bench_sentiment.py", "--short", "--device", "cpu", "--model", str(emotion_model_dir()),
        "--out", str(tmp_path), timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, output_tail(done)

    report = json.loads((tmp_path / "out" / "sentiment.json").read_text())
    timed = {(run["precision"], run["torch_threads"], run["batch_size"]) for run in report["runs"]}
    for precision in ("fp32", "int8"):
        assert {(precision, 1, batch) for batch in BATCH_SIZES} <= timed
    assert all(run["per_message_p50_ms"] > 0 and run["throughput_msgs_per_s"] > 0 for run in report["runs"])
    assert report["goal"]["precision"] == "fp32" and report["goal"]["measured"] > 0
    agreement = report["int8_vs_fp32"]
    assert agreement["messages"] >= 500
    assert agreement["same_emotion"] >= 0.9, agreement
    assert agreement["same_flag_at_0_5"] >= 0.95, agreement
    assert "int8" in (tmp_path / "reports" / "sentiment.md").read_text()
