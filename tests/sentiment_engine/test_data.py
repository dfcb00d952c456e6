"""Reading and splitting labeled chat data: every bad case names the file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sentiment.engine.labels import label_name, parse_label
from sentiment.training.data import load_splits, read_sentiment_records
from translation.training.common import DataError

from .conftest import sample_rows, write_tsv

HEADER = "text\temotion\tlanguage\thostile\n"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("content", "line", "fragment"),
    [
        ("", None, "no examples"),
        (HEADER, None, "no examples"),
        ("text\tlanguage\nhello\ten\n", 2, "missing column(s) emotion"),
        (HEADER + "great day\tjoy\ten\t0\nso what\tboredom\ten\t0\n", 3, "unknown emotion 'boredom'"),
        (HEADER + "great day\tjoy\ten\t0\n  \tjoy\ten\t0\n", 3, "empty 'text'"),
        (HEADER + "great day\tjoy\ten\t0\nyou idiot\tanger\ten\tmaybe\n", 3, "hostile must be 0 or 1"),
    ],
)
def test_bad_tsv_files_name_the_line(tmp_path: Path, content: str, line: int | None, fragment: str) -> None:
    path = _write(tmp_path / "bad.tsv", content)
    with pytest.raises(DataError) as caught:
        read_sentiment_records(path)
    assert caught.value.line == line
    assert fragment in str(caught.value)
    assert str(path) in str(caught.value)


def test_bad_jsonl_line(tmp_path: Path) -> None:
    lines = [{"text": "yay", "emotion": "joy"}, {"text": "meh", "emotion": "bored"}]
    path = _write(tmp_path / "d.jsonl", "\n".join(json.dumps(row) for row in lines) + "\n")
    with pytest.raises(DataError, match=r"d\.jsonl:2: unknown emotion"):
        read_sentiment_records(path)


def test_jsonl_with_boolean_hostile(tmp_path: Path) -> None:
    rows = [{"text": f"idiot {i}", "emotion": "Anger", "hostile": i % 2 == 0, "language": "en"} for i in range(30)]
    path = _write(tmp_path / "d.jsonl", "\n".join(json.dumps(row) for row in rows) + "\n")
    splits = load_splits(path, seed=1)
    examples = splits.train + splits.validation + splits.test
    assert {e.emotion for e in examples} == {"anger"}
    assert sum(e.hostile for e in examples) == 15
    assert not splits.from_file and all(splits.sizes().values())


def test_directory_reads_every_tsv_and_keeps_the_file_test_split(tmp_path: Path) -> None:
    rows = sample_rows()
    write_tsv(tmp_path / "a.tsv", rows[: len(rows) // 2])
    write_tsv(tmp_path / "b.tsv", rows[len(rows) // 2 :])
    (tmp_path / "notes.md").write_text("not data")
    splits = load_splits(tmp_path, seed=3)
    assert splits.from_file
    assert len(splits.test) == sum(row["split"] == "test" for row in rows)
    assert len(splits.train) + len(splits.validation) == sum(row["split"] == "train" for row in rows)
    # Validation is carved from train only, and the carve is seeded.
    assert {e.source for e in splits.validation} == {e.source for e in load_splits(tmp_path, seed=3).validation}
    assert {e.source for e in splits.validation}.isdisjoint({e.source for e in splits.test})


def test_directory_with_mixed_split_marking_is_refused(tmp_path: Path) -> None:
    rows = sample_rows()
    write_tsv(tmp_path / "a.tsv", rows)
    write_tsv(tmp_path / "b.tsv", rows, columns=("text", "emotion", "language", "hostile"))
    with pytest.raises(DataError, match="b.tsv.*do(es)? not"):
        load_splits(tmp_path)


def test_empty_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no \\*.tsv"):
        load_splits(tmp_path)


def test_rows_without_split_get_a_seeded_stratified_split(tmp_path: Path) -> None:
    path = write_tsv(tmp_path / "d.tsv", sample_rows(), columns=("text", "emotion", "language", "hostile"))
    first, again, other = load_splits(path, seed=5), load_splits(path, seed=5), load_splits(path, seed=6)
    assert [e.source for e in first.test] == [e.source for e in again.test]
    assert [e.source for e in first.test] != [e.source for e in other.test]
    assert {e.emotion for e in first.test} == {e.emotion for e in first.train}


@pytest.mark.parametrize("hostile", [False, True])
@pytest.mark.parametrize("emotion", ["anger", "joy", "neutral"])
def test_label_names_round_trip(emotion: str, hostile: bool) -> None:
    assert parse_label(label_name(emotion, hostile)) == (emotion, hostile)


@pytest.mark.parametrize("label", ["LABEL_0", "rage", "anger+rude", ""])
def test_foreign_labels_are_refused(label: str) -> None:
    with pytest.raises(ValueError):
        parse_label(label)
