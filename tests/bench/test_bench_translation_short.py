"""The translation benchmark's short mode runs end to end: real Daphne, a real Celery translation worker,
Apertium, Redis. Timings are not asserted (they depend on the machine); what is asserted is that every message
reached both readers as exactly one translation event, on the expected route."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import output_tail, run_script


@pytest.mark.integration
def test_short_translation_bench_translates_every_message_once(tmp_path: Path) -> None:
    redis_db = os.environ.get("BRIDGE_BENCH_REDIS_DB", "15")
    done = run_script(
        "bench/bench_translation.py", "--short", "--out", str(tmp_path), "--redis-db", redis_db, timeout=240
    )
    assert done.returncode == 0, output_tail(done)

    result = json.loads((tmp_path / "translation.json").read_text())
    runs = {run["language"]: run for run in result["runs"]}
    assert set(runs) == {"es", "fr"}
    for language, run in runs.items():
        assert run["messages"] > 0, language
        assert run["missing"] == 0, f"{language}: some messages got no translation event: {run}"
        assert run["duplicates"] == 0, f"{language}: a message got more than one translation event: {run}"
        assert run["ok"] + run["untranslated"] + run["failed"] == run["messages"]
        assert run["p50_ms"] > 0
    assert all("apertium" in engine and ">" not in engine for engine in runs["es"]["engines"])
    assert all(">" in engine for engine in runs["fr"]["engines"]), "en->fr goes by pivot"
    assert (tmp_path / "translation-short.md").is_file()
    # Flower watched the live worker during the run and counted every translation task it ran.
    translated = sum(run["ok"] + run["untranslated"] + run["failed"] for run in runs.values())
    assert result["flower_tasks"].get("translation.translate_message", 0) >= runs["es"]["messages"], result[
        "flower_tasks"
    ]
    assert translated > 0
