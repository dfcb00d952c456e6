"""Celery interface of the translation pipeline: thin, owns only the retry policy."""

from __future__ import annotations

from celery import shared_task

from translation import services
from translation.engine.base import EngineError

MAX_RETRIES = 4


@shared_task(
    bind=True,
    name="translation.translate_message",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
)
def translate_message(self, message_id: int, language: str) -> None:
    try:
        services.translate_message(message_id=message_id, language=language)
    except EngineError as exc:
        if self.request.retries >= MAX_RETRIES:
            services.record_failure(message_id=message_id, language=language, reason=str(exc)[:500])
            return
        # Exponential backoff with a cap: 1, 2, 4, 8 s.
        raise self.retry(exc=exc, countdown=min(2**self.request.retries, 30)) from exc
