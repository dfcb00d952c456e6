from __future__ import annotations

from pathlib import Path

import pytest

from tests.checkpoints import builders


@pytest.fixture(scope="session")
def sentiment_files() -> dict[str, bytes]:
    return builders.tiny_sentiment_files()


@pytest.fixture(scope="session")
def translation_files() -> dict[str, bytes]:
    return builders.tiny_translation_files()


@pytest.fixture
def sentinel(tmp_path: Path):
    """A path that must never exist: the attack corpus' pickles create it when unpickled."""
    path = tmp_path / "PWNED"
    yield path
    assert not path.exists(), "an uploaded pickle was executed"
