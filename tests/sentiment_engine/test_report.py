"""The VADER baseline comparison and the Markdown figures for docs/models.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentiment.training.report import (
    agreement_table,
    annotator_agreement,
    compare_with_vader,
    main,
    markdown_tables,
    vader_polarity,
)

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


def test_report_scores_the_probes_beside_the_data(
    tiny_trained: tuple[Path, dict], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_dir, _ = tiny_trained
    (tmp_path / "probes").mkdir()
    write_tsv(tmp_path / "sample.tsv", sample_rows())
    # One text expected both ways: exactly one of the two is a miss, whatever the model says.
    probes = [{"text": "you idiot, so mad", "emotion": "anger", "language": lang, "hostile": h} for lang, h in
              (("en", "1"), ("de", "0"))]  # fmt: skip
    write_tsv(tmp_path / "probes" / "p.tsv", probes, columns=("text", "emotion", "language", "hostile"))
    main([str(model_dir), str(tmp_path)])
    out = capsys.readouterr().out
    assert "Probes: 1 of 2 flagged wrongly at 0.5:" in out
    assert out.count("'you idiot, so mad': hostile") == 1


def _held_out_once(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    seen, unique = set(), []
    for row in rows:
        if row["split"] == "test" and (row["language"], row["text"]) not in seen:
            seen.add((row["language"], row["text"]))
            unique.append(dict(row))
    return unique


def test_annotator_agreement_counts_what_a_second_annotator_changed(tmp_path: Path) -> None:
    data = write_tsv(tmp_path / "d.tsv", sample_rows())
    second = _held_out_once(sample_rows())
    changed = next(row for row in second if row["emotion"] == "anger" and row["hostile"] == "1")
    changed["emotion"], changed["hostile"] = "disgust", "0"
    second_file = write_tsv(tmp_path / "second.tsv", second, columns=("text", "emotion", "language", "hostile"))

    agreement = annotator_agreement(data, second_file)

    n = len(second)
    assert agreement["all"]["n"] == n
    assert agreement["all"]["emotion_agreement"] == pytest.approx((n - 1) / n)
    assert agreement["all"]["hostile_agreement"] == pytest.approx((n - 1) / n)
    assert 0.0 < agreement["all"]["emotion_kappa"] < 1.0
    assert agreement["emotion_disagreements"] == {"anger / disgust": 1}
    language = agreement["per_language"][changed["language"]]
    assert language["emotion_agreement"] < 1.0
    assert all(
        fig["emotion_kappa"] == 1.0 for lang, fig in agreement["per_language"].items() if lang != changed["language"]
    )
    table = agreement_table(agreement)
    assert "| **all** |" in table and "anger / disgust 1" in table


def test_annotator_agreement_needs_every_held_out_row_once(tmp_path: Path) -> None:
    data = write_tsv(tmp_path / "d.tsv", sample_rows())
    second = _held_out_once(sample_rows())
    columns = ("text", "emotion", "language", "hostile")
    with pytest.raises(ValueError, match="no second label"):
        annotator_agreement(data, write_tsv(tmp_path / "short.tsv", second[1:], columns=columns))
    with pytest.raises(ValueError, match="labelled twice"):
        annotator_agreement(data, write_tsv(tmp_path / "twice.tsv", [*second, second[0]], columns=columns))
    stranger = {**second[0], "text": "a row nobody held out"}
    with pytest.raises(ValueError, match="not a held-out row"):
        annotator_agreement(data, write_tsv(tmp_path / "extra.tsv", [*second, stranger], columns=columns))


def test_the_shipped_second_annotation_covers_the_held_out_split() -> None:
    data = Path(__file__).resolve().parents[2] / "data" / "sentiment"
    agreement = annotator_agreement(data, data / "agreement" / "test.second_annotator.tsv")
    assert agreement["all"]["n"] == 923
