"""Labeled chat messages for the emotion classifier: reading, validating and splitting.

The generic parts (TSV/JSONL parsing with line numbers, seeded splits) live in
``translation.training.common``; this module adds the sentiment columns and rules.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentiment.engine.labels import EMOTIONS, label_name
from translation.training.common import DataError, Record, Splits, read_records, split_records

REQUIRED_COLUMNS = ("text", "emotion")
OPTIONAL_COLUMNS = ("language", "hostile")
DATA_SUFFIXES = (".tsv", ".jsonl")
# Probe sets live beside the data, one folder down, so that the loader (which reads only the files directly in
# the data directory) never trains on them.
PROBES_DIR = "probes"
_TRUE = {"1", "true", "yes", "y"}
_FALSE = {"0", "false", "no", "n"}


@dataclass(frozen=True)
class Example:
    """One labeled message, with where it came from for error messages."""

    text: str
    emotion: str
    hostile: bool
    language: str | None
    source: str

    @property
    def label(self) -> str:
        return label_name(self.emotion, self.hostile)


def _parse_hostile(value: Any) -> bool | None:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE or not text:
        return False
    return None


def _check(record: Record) -> str | None:
    emotion = record["emotion"].lower()
    if emotion not in EMOTIONS:
        return f"unknown emotion {record['emotion']!r} (use one of: {', '.join(EMOTIONS)})"
    if _parse_hostile(record.get("hostile")) is None:
        return f"hostile must be 0 or 1, got {record.get('hostile')!r}"
    return None


def data_files(path: str | os.PathLike[str]) -> list[Path]:
    """The data files behind ``path``: the file itself, or every *.tsv / *.jsonl in a directory (sorted)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in DATA_SUFFIXES)
        if not files:
            raise DataError("no *.tsv or *.jsonl data files in directory", path=path)
        return files
    return [path]


def read_sentiment_records(path: str | os.PathLike[str]) -> list[Record]:
    """Read and validate every record under ``path`` (file or directory). Raises DataError with the line."""
    records: list[Record] = []
    marked = []
    for file in data_files(path):
        found = read_records(file, REQUIRED_COLUMNS, OPTIONAL_COLUMNS, check=_check)
        marked.append((file, found[0].split is not None))
        records.extend(Record(line=r.line, values={**r.values, "_file": file.name}, split=r.split) for r in found)
    if len({has_split for _, has_split in marked}) > 1:
        unmarked = next(file for file, has_split in marked if not has_split)
        raise DataError("other data files mark a split column but this one does not", path=unmarked)
    return records


def to_example(record: Record) -> Example:
    language = record.get("language")
    return Example(
        text=record["text"],
        emotion=record["emotion"].lower(),
        hostile=bool(_parse_hostile(record.get("hostile"))),
        language=str(language).lower() if language else None,
        source=f"{record.get('_file', '')}:{record.line}",
    )


@dataclass
class SentimentSplits:
    train: list[Example]
    validation: list[Example]
    test: list[Example]
    from_file: bool
    # Hand-written checks of the hostile flag (load_probes): scored after training, never trained on.
    probes: list[Example] = field(default_factory=list)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}


def load_splits(path: str | os.PathLike[str], *, seed: int = 13, validation_fraction: float = 0.1) -> SentimentSplits:
    """Read ``path`` and split it: by the file's split column when present, else seeded 80/10/10.

    Files that mark only train and test (as data/sentiment/ does) get a seeded, label-stratified validation
    slice carved out of train: the test split stays untouched, so training never sees it.
    """
    records = read_sentiment_records(path)
    splits: Splits = split_records(records, seed=seed, stratify_by="emotion")
    train, validation = splits.train, splits.validation
    if splits.from_file and not validation:
        train, validation = _carve_validation(train, seed=seed, fraction=validation_fraction)
    if not validation:
        raise DataError("no validation examples (add some, or more training rows)", path=path)
    if not splits.test:
        raise DataError("no test examples: mark some rows split=test", path=path)
    return SentimentSplits(
        train=[to_example(r) for r in train],
        validation=[to_example(r) for r in validation],
        test=[to_example(r) for r in splits.test],
        from_file=splits.from_file,
        probes=load_probes(path),
    )


def load_probes(path: str | os.PathLike[str]) -> list[Example]:
    """The probe rows of a data directory: every data file in ``<path>/probes/``, same columns, no split.

    A probe is a short hand-written message whose hostile flag is not in doubt (sincere thanks that must not be
    flagged, say). The held-out split measures the flag on average; probes name the messages a build gets
    wrong, so that a regression a moderator would notice shows in the build's report. Empty when ``path`` is
    a file or has no probes folder.
    """
    folder = Path(path) / PROBES_DIR
    if not folder.is_dir():
        return []
    return [to_example(record) for record in read_sentiment_records(folder)]


def _carve_validation(records: Sequence[Record], *, seed: int, fraction: float) -> tuple[list, list]:
    from sklearn.model_selection import train_test_split

    size = max(1, round(len(records) * fraction))
    if len(records) - size < 1:
        return list(records), []
    # Stratify on emotion+hostile+language so every group has a voice in validation; fall back when too rare.
    keys = [f"{r['emotion']}|{r.get('hostile')}|{r.get('language')}" for r in records]
    for stratify in (keys, [r["emotion"] for r in records], None):
        try:
            train, validation = train_test_split(list(records), test_size=size, random_state=seed, stratify=stratify)
            return train, validation
        except ValueError:
            continue
    raise AssertionError("unreachable: an unstratified split cannot fail")
