"""The VADER baseline comparison and the Markdown figures for docs/models.md."""

from __future__ import annotations

from pathlib import Path

from sentiment.training.report import compare_with_vader, markdown_tables, vader_polarity

from .conftest import sample_rows, write_tsv


def test_vader_cutoffs() -> None:
    assert vader_polarity(0.05) == "positive"
    assert vader_polarity(-0.05) == "negative"
    assert vader_polarity(0.0) == vader_polarity(0.049) == "neutral"


def test_comparison_on_english_test_rows(tiny_trained: tuple[Path, dict], tmp_path: Path) -> None:
    model_dir, metrics = tiny_trained
    data = write_tsv(tmp_path / "d.tsv", sample_rows())
    comparison = compare_with_vader(model_dir, data)
    english_test = [r for r in sample_rows() if r["split"] == "test" and r["language"] == "en"]
    assert comparison["n"] == len(english_test)
    for system in ("model", "vader"):
        assert 0.0 <= comparison[system]["polarity_accuracy"] <= 1.0
    text = markdown_tables(metrics, comparison)
    assert "| VADER" in text and "| en |" in text and f"{metrics['test']['macro_f1']:.3f}" in text
    int8 = metrics["test_int8"]
    assert f"In int8 on a CPU worker (opt-in, BRIDGE_SENTIMENT_CPU_INT8=1): accuracy {int8['accuracy']:.3f}" in text
