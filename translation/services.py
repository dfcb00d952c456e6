"""Writes of the translation pipeline: detect a message's language, enqueue its translations, store results."""

from __future__ import annotations

import hashlib
import logging
import time
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from chatsite import broker, events, metrics, pipeline, realtime
from chatsite.languages import served_languages
from chatsite.models import Message
from chatsite.pipeline import SourceLanguage
from chatsite.selectors import messages_with_their_translations, room_reader_languages, translation_payload
from translation.engine import base as engine_base
from translation.engine.langdetect import detect_language
from translation.models import Translation

logger = logging.getLogger(__name__)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def detect_source_language(text: str, *, fallback: str) -> SourceLanguage:
    detection = detect_language(text, served_languages(), fallback)
    return SourceLanguage(language=detection.language, confidence=detection.confidence, method=detection.method)


def target_languages(message: Message) -> list[str]:
    """The languages the room's members read, less the message's own: each needs one translation."""
    return sorted(room_reader_languages(message.room_id) - {message.language})


def request_translations(message_id: int) -> None:
    from translation.tasks import translate_message

    message = Message.objects.filter(pk=message_id).first()
    if message is None:
        return
    for language in target_languages(message):
        translate_message.delay(message_id, language)


def resend_missing_translations(window: pipeline.SweepWindow) -> int:
    """The sweeper's half for translations: re-sends each missing (message, language) while the queue is empty.

    A translation re-sent too often without result is recorded as failed, so readers see why, not a spinner.
    """
    from translation.tasks import translate_message

    if broker.queue_depth("translation") != 0:
        return 0  # a backlog (or an unreachable broker): the work may be waiting, not lost
    readers_by_room: dict[int, set[str]] = {}
    resent = 0
    messages = messages_with_their_translations(
        created_after=window.created_after, created_before=window.created_before, limit=window.limit
    )
    for message in messages:
        if message.room_id not in readers_by_room:
            readers_by_room[message.room_id] = room_reader_languages(message.room_id)
        done = {translation.language for translation in message.translations.all()}
        for language in sorted(readers_by_room[message.room_id] - done - {message.language}):
            attempt = pipeline.claim_resend("translation", message.id, language)
            if attempt is None:
                continue
            if attempt > settings.BRIDGE_SWEEP_MAX_RESENDS:
                record_failure(
                    message_id=message.id,
                    language=language,
                    reason=f"no worker completed this translation after {settings.BRIDGE_SWEEP_MAX_RESENDS} re-sends",
                )
                continue
            translate_message.delay(message.id, language)
            resent += 1
    return resent


def translate_message(*, message_id: int, language: str) -> Translation | None:
    """Worker side: re-read the message, translate it, upsert the result. None when there is nothing to do."""
    from translation import runtime

    message = Message.objects.select_related("room").filter(pk=message_id).first()
    if message is None or message.hidden or message.language == language:
        return None
    source_hash = text_hash(message.text)
    started = time.perf_counter()
    result = runtime.translate(message.text, message.language, language, message.room.do_not_translate)
    active_ms = (time.perf_counter() - started) * 1000
    stored = store_translation(message_id=message_id, language=language, result=result, source_hash=source_hash)
    if stored is not None and stored.status == Translation.Status.OK:
        _record_shadow(message, language, stored, active_ms)
    return stored


def _record_shadow(message: Message, language: str, active: Translation, active_ms: float) -> None:
    """The shadow candidate's translation of the same message, scored against what readers got (chrF); never
    shown. A candidate that fails is logged and skipped: shadow mode must not cost readers anything."""
    import sacrebleu  # here, not at the top: the web process imports this module and never scores

    from chatsite.models import ShadowResult
    from translation import runtime

    try:
        shadow = runtime.shadow_translate(message.text, message.language, language)
    except Exception:
        logger.exception("shadow translation failed for message %s", message.id)
        return
    if shadow is None:
        return
    checkpoint_id, candidate, candidate_ms = shadow
    similarity = sacrebleu.sentence_chrf(candidate, [active.text or ""]).score
    ShadowResult.objects.update_or_create(
        checkpoint_id=checkpoint_id,
        message_id=message.id,
        defaults={
            "active_version": (active.engine or "")[:200],
            "active_label": language,
            "candidate_label": f"chrF {similarity:.1f}",
            "agree": candidate.strip() == (active.text or "").strip(),
            "active_ms": active_ms,
            "candidate_ms": candidate_ms,
        },
    )


def record_failure(*, message_id: int, language: str, reason: str) -> Translation | None:
    message = Message.objects.filter(pk=message_id).first()
    if message is None:
        return None
    logger.error("translation failed for message %s into %s: %s", message_id, language, reason)
    metrics.ERRORS.labels(kind="translation_failed").inc()
    return store_translation(
        message_id=message_id,
        language=language,
        result=engine_base.Translation.failed(reason),
        source_hash=text_hash(message.text),
    )


@transaction.atomic
def store_translation(
    *, message_id: int, language: str, result: engine_base.Translation, source_hash: str
) -> Translation | None:
    """Upsert keyed (message, language), then message.translated to that language's readers after commit.

    The message row is locked and re-read: when it was edited while the engine ran, this result is stale and is
    dropped (the edit enqueued a fresh task).
    """
    message = Message.objects.select_for_update().filter(pk=message_id).first()
    if message is None or message.hidden or text_hash(message.text) != source_hash:
        return None
    row, _ = Translation.objects.update_or_create(
        message=message,
        language=language,
        defaults={
            "status": result.status,
            "text": result.text,
            "engine": result.engine,
            "reason": result.reason,
            "source_text_hash": source_hash,
        },
    )
    seconds = (timezone.now() - message.created).total_seconds()
    metrics.TRANSLATION_SECONDS.labels(status=row.status).observe(seconds)
    logger.info(
        "translation stored: %s into %s by %s, %.3f s after the send", row.status, language, row.engine, seconds
    )
    event = events.message_translated(
        message_id=message.id, seq=message.seq, language=language, **translation_payload(row)
    )
    transaction.on_commit(partial(realtime.broadcast_to_readers, message.room_id, language, event))
    if row.status == Translation.Status.OK:
        transaction.on_commit(partial(pipeline.translation_stored, message.id, language))
    return row


def warm_up_language_detection() -> None:
    """Builds the detector (about 2 s and 190 MB for eight languages) so the first message does not pay it."""
    detect_language("warm up the language models please", served_languages(), "en")
