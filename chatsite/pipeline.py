"""Where the chat core hands a message to the model pipeline: language detection before it is stored, and the
follow-up tasks (translation, sentiment) after it commits. The chat core knows nothing else about models."""

from __future__ import annotations

from dataclasses import dataclass

from chatsite.models import Message


@dataclass(frozen=True)
class SourceLanguage:
    language: str
    confidence: float | None
    method: str


def detect_language(text: str, *, fallback: str) -> SourceLanguage:
    from translation.services import detect_source_language

    return detect_source_language(text, fallback=fallback)


def enqueue_followups(message_id: int) -> None:
    from sentiment.services import request_sentiment
    from translation.services import request_translations

    request_translations(message_id)
    request_sentiment(message_id)


def discard_followups(message: Message) -> None:
    """An edit makes the translations and the emotion stale: drop them so readers see them pending again."""
    from sentiment.models import Sentiment
    from translation.models import Translation

    Translation.objects.filter(message=message).delete()
    Sentiment.objects.filter(message=message).delete()


def translation_stored(message_id: int, language: str) -> None:
    """A reader-visible translation exists: score its tone too (translation can sharpen or soften an insult)."""
    from sentiment.services import request_translation_score

    request_translation_score(message_id, language)
