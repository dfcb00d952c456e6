"""Data files for fine-tuning: parsing, errors with line numbers, splits, and atomic outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from translation.training.common import (
    DataError,
    atomic_output_dir,
    plot_curves,
    read_records,
    split_records,
    write_metrics,
    write_model_card,
)
from translation.training.finetune import read_parallel


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_tsv_reads_quotes_and_tabs_literally(tmp_path: Path) -> None:
    path = write(tmp_path / "d.tsv", 'source\ttarget\nShe said "hi"\tElla dijo "hola"\n\n  Bye  \tAdiós\n')
    records = read_parallel(path)
    assert [(r.line, r["source"], r["target"]) for r in records] == [
        (2, 'She said "hi"', 'Ella dijo "hola"'),
        (4, "Bye", "Adiós"),
    ]


def test_jsonl_with_optional_columns(tmp_path: Path) -> None:
    lines = [{"text": "great", "emotion": "joy", "language": "en"}, {"text": "mal", "emotion": "anger"}]
    path = write(tmp_path / "d.jsonl", "\n".join(json.dumps(line) for line in lines) + "\n")
    records = read_records(path, required=("text", "emotion"), optional=("language",))
    assert records[0]["language"] == "en"
    assert records[1].get("language") is None
    assert records[1].line == 2


@pytest.mark.parametrize(
    ("name", "content", "line", "fragment"),
    [
        ("empty.tsv", "", None, "no examples"),
        ("header.tsv", "source\ttarget\n", None, "no examples"),
        ("cols.tsv", "source\tfoo\nhello\thola\n", 2, "missing column(s) target"),
        ("blank.tsv", "source\ttarget\nhello\thola\nbye\t  \n", 3, "empty 'target'"),
        ("same.tsv", "source\ttarget\nhello\thola\nHotel\thotel\n", 3, "identical"),
        ("extra.tsv", "source\ttarget\na\tb\tc\n", 2, "3 tab-separated fields"),
        ("bad.jsonl", '{"source": "a", "target": "b"}\n{"source": "a",\n', 2, "invalid JSON"),
        ("list.jsonl", '["a", "b"]\n', 1, "JSON object"),
        ("num.jsonl", '{"source": 3, "target": "tres"}\n', 1, "must be text"),
        ("split.tsv", "source\ttarget\tsplit\na\tb\ttrain\nc\td\tholdout\n", 3, "unknown split"),
        ("partial.tsv", "source\ttarget\tsplit\na\tb\ttrain\nc\td\t\n", 3, "split column"),
        ("data.csv", "source,target\na,b\n", None, "unknown data format"),
    ],
)
def test_data_errors_name_the_line(tmp_path: Path, name: str, content: str, line: int | None, fragment: str) -> None:
    path = write(tmp_path / name, content)
    with pytest.raises(DataError) as caught:
        read_parallel(path)
    assert fragment in str(caught.value)
    assert caught.value.line == line
    if line is not None:
        assert f"{name}:{line}:" in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        read_parallel(tmp_path / "nope.tsv")


def _records(tmp_path: Path, count: int, split_column: bool = False):
    header = "source\ttarget" + ("\tsplit" if split_column else "")
    rows = []
    for index in range(count):
        split = ["train", "train", "dev", "test"][index % 4]
        rows.append(f"word {index}\tpalabra {index}" + (f"\t{split}" if split_column else ""))
    return read_parallel(write(tmp_path / f"d{count}{split_column}.tsv", "\n".join([header, *rows]) + "\n"))


def test_seeded_split_is_fixed_disjoint_and_complete(tmp_path: Path) -> None:
    records = _records(tmp_path, 100)
    first = split_records(records, seed=1)
    again = split_records(records, seed=1)
    other = split_records(records, seed=2)
    assert first.sizes() == {"train": 80, "validation": 10, "test": 10}
    assert [r.line for r in first.test] == [r.line for r in again.test]
    assert [r.line for r in first.test] != [r.line for r in other.test]
    lines = [r.line for part in (first.train, first.validation, first.test) for r in part]
    assert sorted(lines) == sorted(r.line for r in records)


def test_split_column_wins(tmp_path: Path) -> None:
    splits = split_records(_records(tmp_path, 8, split_column=True), seed=1)
    assert splits.from_file
    assert splits.sizes() == {"train": 4, "validation": 2, "test": 2}


def test_stratified_split_keeps_every_label(tmp_path: Path) -> None:
    rows = [f'{{"text": "t{i}", "emotion": "{"joy" if i % 4 else "anger"}"}}' for i in range(80)]
    records = read_records(write(tmp_path / "s.jsonl", "\n".join(rows)), required=("text", "emotion"))
    splits = split_records(records, seed=3, stratify_by="emotion")
    for part in (splits.train, splits.validation, splits.test):
        assert {r["emotion"] for r in part} == {"joy", "anger"}


def test_atomic_output_dir_leaves_nothing_on_error(tmp_path: Path) -> None:
    out = tmp_path / "model"
    with pytest.raises(RuntimeError), atomic_output_dir(out) as temp:
        (temp / "config.json").write_text("{}")
        raise RuntimeError("boom")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_dir_refuses_then_replaces(tmp_path: Path) -> None:
    out = tmp_path / "model"
    with atomic_output_dir(out) as temp:
        (temp / "a.txt").write_text("1")
    with pytest.raises(FileExistsError), atomic_output_dir(out):
        pass
    with atomic_output_dir(out, overwrite=True) as temp:
        (temp / "b.txt").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_artifacts(tmp_path: Path) -> None:
    write_metrics(tmp_path, {"bleu": 12.5, "nan": float("nan"), "nested": {"a": (1, 2)}})
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"bleu": 12.5, "nan": None, "nested": {"a": [1, 2]}}
    card = write_model_card(
        tmp_path,
        title="T",
        summary="S",
        base_model="base",
        data={"train": 10},
        hyperparameters={"lr": 0.001},
        metrics={"chrF": 55.5},
        languages=["en", "es"],
    ).read_text()
    assert card.startswith("---\nlibrary_name: transformers\nlanguage:\n- en\n- es\n")
    assert "| chrF | 55.5 |" in card and "| lr | 0.001 |" in card
    history = [{"loss": 3.0, "step": 1}, {"loss": 2.0, "step": 2}, {"eval_loss": 2.5, "eval_chrf": 10.0, "step": 2}]
    png = plot_curves(history, tmp_path / "curves.png")
    assert png is not None and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_curves([{"train_runtime": 1.0, "step": 1}], tmp_path / "none.png") is None
