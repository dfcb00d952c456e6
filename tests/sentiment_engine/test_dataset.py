"""The project's own emotion dataset (data/sentiment/): the held-out split stays frozen and the rows stay clean.

The default model's published figures (docs/models.md) are only comparable from one data pass to the next while
the test split is byte-identical; these fingerprints fail the suite if a data pass touches a test row.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from sentiment.engine.labels import EMOTIONS
from sentiment.training.data import load_splits, read_sentiment_records, to_example

DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "sentiment"

# sha256 (first 16 hex) of each file's test rows, in file order, joined by newlines; and their count.
FROZEN_TEST_SPLIT = {
    "de": (101, "3f295eb6325775f8"),
    "en": (100, "6665562f7e1f518c"),
    "es": (101, "e0a0c0f502ea06be"),
    "fr": (101, "570bb3e4b35bc0f6"),
    "it": (130, "95e17d1c339b11c2"),
    "ja": (130, "d7fd283fe550d763"),
    "pt": (130, "07f20af752e24b9c"),
    "zh": (130, "c488d0a4f686e8ec"),
}


def _lines(language: str) -> list[str]:
    return (DATA_DIR / f"chat_emotions.{language}.tsv").read_text(encoding="utf-8").splitlines()[1:]


@pytest.mark.parametrize("language", sorted(FROZEN_TEST_SPLIT))
def test_held_out_split_is_unchanged(language: str) -> None:
    test_rows = [line for line in _lines(language) if line.split("\t")[4] == "test"]
    count, fingerprint = FROZEN_TEST_SPLIT[language]
    assert len(test_rows) == count
    assert hashlib.sha256("\n".join(test_rows).encode()).hexdigest()[:16] == fingerprint


@pytest.mark.parametrize("language", sorted(FROZEN_TEST_SPLIT))
def test_every_emotion_in_both_splits_and_hostile_rows_present(language: str) -> None:
    records = read_sentiment_records(DATA_DIR / f"chat_emotions.{language}.tsv")
    for split in ("train", "test"):
        examples = [to_example(r) for r in records if r.split == split]
        assert {e.language for e in examples} == {language}
        emotions = Counter(e.emotion for e in examples)
        assert set(emotions) == set(EMOTIONS), (split, emotions)
        assert min(emotions.values()) >= (10 if split == "test" else 50), (split, emotions)
        assert any(e.hostile for e in examples)


def test_no_text_twice_and_every_row_well_formed() -> None:
    seen: dict[str, list[str]] = defaultdict(list)
    for language in FROZEN_TEST_SPLIT:
        for number, line in enumerate(_lines(language), start=2):
            fields = line.split("\t")
            assert len(fields) == 5, (language, number)
            text = fields[0]
            assert text == text.strip() and text and not text.startswith('"'), (language, number)
            seen[text.casefold()].append(f"{language}:{number}")
    # 'ok' is the one interjection that every chat language writes the same way (all neutral, all train).
    repeated = {text: where for text, where in seen.items() if len(where) > 1 and text != "ok"}
    assert not repeated


def test_loader_reads_the_whole_dataset() -> None:
    splits = load_splits(DATA_DIR)
    assert len(splits.test) == sum(count for count, _ in FROZEN_TEST_SPLIT.values())
    assert len(splits.train) + len(splits.validation) > 4000


def test_candidate_rows_are_clean_train_rows_new_to_the_dataset() -> None:
    """Rows waiting in candidates/ must be ready to append: they parse, are all train, and repeat no text."""
    dataset = {line.split("\t")[0].casefold() for language in FROZEN_TEST_SPLIT for line in _lines(language)}
    seen: set[str] = set()
    for path in sorted((DATA_DIR / "candidates").glob("*.tsv")):
        records = read_sentiment_records(path)
        assert records, path
        for record in records:
            example = to_example(record)
            assert record.split == "train" and example.language in FROZEN_TEST_SPLIT, (path.name, example.text)
            key = example.text.casefold()
            assert key not in dataset and key not in seen, (path.name, example.text)
            seen.add(key)


def test_probes_are_new_texts_in_every_language_and_load_beside_the_data() -> None:
    """The probes the default build reports on (data/sentiment/probes/) are never training or test rows."""
    dataset = {line.split("\t")[0].casefold() for language in FROZEN_TEST_SPLIT for line in _lines(language)}
    probes = load_splits(DATA_DIR).probes
    assert probes and not [p.text for p in probes if p.text.casefold() in dataset]
    assert {p.language for p in probes} == set(FROZEN_TEST_SPLIT)
