"""Where the chat core hands a message to the model pipeline: language detection before it is stored, and the
follow-up tasks (translation, sentiment) after it commits. The chat core knows nothing else about models."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections
from django.utils import timezone

from chatsite import logs, metrics
from chatsite.models import Message

logger = logging.getLogger(__name__)


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


# One thread per web process publishes follow-up tasks, so that the broker round trips and the reader-language
# query stay off the consumers' shared database thread (the delivery hot path). A message whose follow-ups die
# with the process is found by the sweeper.
_followups = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bridge-followups")


def _enqueue_followups_in_background(message_id: int) -> None:
    close_old_connections()
    try:
        with logs.about_message(message_id):
            enqueue_followups(message_id)
    except Exception:
        metrics.ERRORS.labels(kind="followups_lost").inc()
        logger.exception("could not enqueue the follow-ups of message %s; the sweeper will re-send them", message_id)
    finally:
        close_old_connections()


def submit_followups(message_id: int) -> None:
    """After a message commits: translation and emotion tasks, published from the follow-ups thread."""
    if settings.BRIDGE_FOLLOWUPS_IN_BACKGROUND:
        _followups.submit(_enqueue_followups_in_background, message_id)
    else:
        enqueue_followups(message_id)


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


@dataclass(frozen=True)
class SweepWindow:
    """The messages the sweeper looks at: old enough that their follow-ups should be done, young enough to care."""

    created_after: datetime
    created_before: datetime
    limit: int


def current_sweep_window(now: datetime | None = None) -> SweepWindow:
    now = now or timezone.now()
    return SweepWindow(
        created_after=now - timedelta(seconds=settings.BRIDGE_SWEEP_MAX_AGE_S),
        created_before=now - timedelta(seconds=settings.BRIDGE_SWEEP_GRACE_S),
        limit=settings.BRIDGE_SWEEP_BATCH,
    )


def claim_resend(kind: str, message_id: int, language: str = "") -> int | None:
    """Whether the sweeper may re-send this piece of work now, and if so how many times it has been re-sent
    (1 on the first). None while the previous re-send is younger than the grace period: it may still be running,
    or retrying with backoff, and must get the same time as the original did."""
    key = f"sweep:{kind}:{message_id}:{language}"
    if not cache.add(f"{key}:recent", 1, timeout=settings.BRIDGE_SWEEP_GRACE_S):
        return None
    cache.add(key, 0, timeout=settings.BRIDGE_SWEEP_MAX_AGE_S)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=settings.BRIDGE_SWEEP_MAX_AGE_S)
        return 1


def sweep_unfinished(window: SweepWindow | None = None) -> dict[str, int]:
    """Re-sends the translations and emotions that lost their task (a killed worker, a restarted Redis)."""
    from sentiment.services import resend_missing_sentiment
    from translation.services import resend_missing_translations

    window = window or current_sweep_window()
    resent = {"translation": resend_missing_translations(window), "sentiment": resend_missing_sentiment(window)}
    for kind, count in resent.items():
        if count:
            metrics.SWEEP_RESENT.labels(kind=kind).inc(count)
    if any(resent.values()):
        logger.warning("sweeper re-sent lost follow-up work: %s", resent)
    return resent
