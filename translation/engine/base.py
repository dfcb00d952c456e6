"""The engine interface every translation backend implements, and the result record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

# Route preference (higher wins): a checkpoint fine-tuned for the exact pair beats a multilingual one, which
# beats rule-based Apertium. Engines expose it as ``priority``.
PRIORITY_PAIR_CHECKPOINT = 300
PRIORITY_MULTILINGUAL_CHECKPOINT = 200
PRIORITY_APERTIUM = 100

STATUS_OK = "ok"
STATUS_UNTRANSLATED = "untranslated"
STATUS_FAILED = "failed"


class EngineError(RuntimeError):
    """An engine could not translate a batch (crashed process, bad output, device error).

    Callers treat it as transient: the task layer retries and finally records the translation as failed.
    """


@dataclass(frozen=True)
class Translation:
    """One translated text as stored and sent to readers (see CONTRACT.md, ``translations``)."""

    text: str | None
    status: str  # "ok" | "untranslated" | "failed"
    engine: str | None  # "name@version"; a pivot joins its legs with " > "
    reason: str | None = None

    @classmethod
    def untranslated(cls, reason: str) -> Translation:
        return cls(text=None, status=STATUS_UNTRANSLATED, engine=None, reason=reason)

    @classmethod
    def failed(cls, reason: str, engine: str | None = None) -> Translation:
        return cls(text=None, status=STATUS_FAILED, engine=engine, reason=reason)


@runtime_checkable
class TranslationEngine(Protocol):
    """What the router needs from a backend. ``priority`` (optional attribute) ranks competing engines."""

    name: str
    version: str

    def pairs(self) -> set[tuple[str, str]]:
        """The (source, target) ISO 639-1 pairs this engine translates."""
        ...

    def translate_batch(self, texts: list[str], source: str, target: str) -> list[str]:
        """Translate ``texts`` in one go, same order and length; raises EngineError on failure."""
        ...


def engine_label(engine: TranslationEngine) -> str:
    """``name@version`` as recorded on each translation."""
    return f"{engine.name}@{engine.version}"
