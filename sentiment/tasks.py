"""Celery interface of the emotion pipeline: thin, owns only the retry policy."""

from __future__ import annotations

import logging

from celery import shared_task

from chatsite import metrics
from sentiment import services
from sentiment.services import ModelUnavailable

logger = logging.getLogger(__name__)

MAX_RETRIES = 4


def _retry_or_give_up(task, exc: Exception, message_id: int) -> None:
    if task.request.retries >= MAX_RETRIES:
        # The message stays without an emotion; the cause is logged for the operator.
        metrics.ERRORS.labels(kind="emotion_gave_up").inc()
        logger.error("emotion tagging gave up on message %s: %s", message_id, exc)
        return
    raise task.retry(exc=exc, countdown=min(2**task.request.retries, 30)) from exc


@shared_task(
    bind=True,
    name="sentiment.analyse_message",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
)
def analyse_message(self, message_id: int) -> None:
    try:
        services.analyse_message(message_id=message_id)
    except (ModelUnavailable, RuntimeError) as exc:
        _retry_or_give_up(self, exc, message_id)


@shared_task(
    bind=True,
    name="sentiment.score_translation",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
)
def score_translation(self, message_id: int, language: str) -> None:
    try:
        services.score_translation(message_id=message_id, language=language)
    except (ModelUnavailable, RuntimeError) as exc:
        _retry_or_give_up(self, exc, message_id)
