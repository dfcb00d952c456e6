"""The checkpoint validator's emotion figures: fp32 for the activation gate, int8 beside them where served."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatsite.checkpoints.evaluation import evaluate_sentiment


@pytest.mark.parametrize("cpu_int8", [False, True])
def test_int8_figures_only_where_a_site_serves_int8(tiny_trained: tuple[Path, dict], settings, cpu_int8: bool) -> None:
    settings.BRIDGE_SENTIMENT_CPU_INT8 = cpu_int8
    metrics = evaluate_sentiment(tiny_trained[0])
    assert metrics["precision"] == "fp32", "the gate always compares the trained weights"
    assert metrics["n"] >= 900, "scored on the project's held-out split"
    assert metrics["latency"]["batch_ms"] > 0
    if cpu_int8:
        assert metrics["int8"]["precision"] == "int8" and metrics["int8"]["n"] == metrics["n"]
        assert 0.0 <= metrics["int8"]["macro_f1"] <= 1.0
    else:
        assert "int8" not in metrics
