"""Writes of the emotion pipeline and of moderation: tag a message, apply the room's policy, flag, act, audit."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from chatsite import broker, events, metrics, pipeline, realtime
from chatsite.models import Message, User
from chatsite.selectors import message_ids_without_sentiment, sentiment_payload
from sentiment.models import Flag, ModerationAction, Sentiment
from sentiment.policy import ModerationThresholds, decide

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TranslationScore:
    """The policy's view of a translation's tone (only the hostile score is kept per translation)."""

    emotion: str
    hostile_score: float


class ModelUnavailable(RuntimeError):
    """No usable emotion checkpoint: the task layer retries, then leaves the message without an emotion.

    Defined here, not in the runtime, so that the web process can enqueue tasks without importing torch.
    """


class ModerationError(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def request_sentiment(message_id: int) -> None:
    from sentiment.tasks import analyse_message

    analyse_message.delay(message_id)


def request_translation_score(message_id: int, language: str) -> None:
    from sentiment.tasks import score_translation

    score_translation.delay(message_id, language)


def resend_missing_sentiment(window: pipeline.SweepWindow) -> int:
    """The sweeper's half for emotions: re-sends each message still without one while the queue is empty."""
    from sentiment.tasks import analyse_message

    if broker.queue_depth("sentiment") != 0:
        return 0  # a backlog (or an unreachable broker): the work may be waiting, not lost
    resent = 0
    missing = message_ids_without_sentiment(
        created_after=window.created_after, created_before=window.created_before, limit=window.limit
    )
    for message_id in missing:
        attempt = pipeline.claim_resend("sentiment", message_id)
        if attempt is None:
            continue
        if attempt > settings.BRIDGE_SWEEP_MAX_RESENDS:
            if attempt == settings.BRIDGE_SWEEP_MAX_RESENDS + 1:  # say it once, not every sweep
                logger.error("message %s still has no emotion after %s re-sends", message_id, attempt - 1)
            continue
        analyse_message.delay(message_id)
        resent += 1
    return resent


def analyse_message(*, message_id: int) -> Sentiment | None:
    """Worker side: tag the original text, then store and apply the policy."""
    from sentiment import runtime

    message = Message.objects.filter(pk=message_id).first()
    if message is None or message.hidden:
        return None
    source_hash = _hash(message.text)
    tagged = runtime.predict(message.text)
    prediction = tagged.prediction
    if tagged.shadow is not None:
        _record_shadow(message_id, tagged)
    return store_sentiment(
        message_id=message_id,
        source_hash=source_hash,
        engine_label=tagged.engine_label,
        emotion=prediction.emotion,
        polarity=prediction.polarity,
        score=prediction.score,
        hostile_score=prediction.hostile_score,
    )


def _record_shadow(message_id: int, tagged) -> None:
    """Stores what the shadow candidate would have said; readers never see it. Idempotent per message."""
    from chatsite.models import ShadowResult

    checkpoint_id, candidate, candidate_ms = tagged.shadow
    active_label = f"{tagged.prediction.emotion}{'+flag' if tagged.prediction.hostile_score >= 0.5 else ''}"
    candidate_label = f"{candidate.emotion}{'+flag' if candidate.hostile_score >= 0.5 else ''}"
    ShadowResult.objects.update_or_create(
        checkpoint_id=checkpoint_id,
        message_id=message_id,
        defaults={
            "active_version": tagged.engine_label,
            "active_label": active_label,
            "candidate_label": candidate_label,
            "agree": active_label == candidate_label,
            "active_ms": tagged.active_ms,
            "candidate_ms": candidate_ms,
        },
    )


def score_translation(*, message_id: int, language: str) -> Sentiment | None:
    """Worker side: the hostile score of the translation readers of `language` see; re-applies the policy."""
    from sentiment import runtime
    from translation.models import Translation

    translation = Translation.objects.filter(message_id=message_id, language=language, status="ok").first()
    if translation is None or not translation.text:
        return None
    prediction = runtime.predict(translation.text).prediction
    with transaction.atomic():
        sentiment = Sentiment.objects.select_for_update().filter(message_id=message_id).first()
        if sentiment is None:
            # The original is not tagged yet; its task will read this score when it stores.
            return None
        sentiment.translation_hostile = {**sentiment.translation_hostile, language: prediction.hostile_score}
        sentiment.save(update_fields=["translation_hostile", "updated"])
        _apply_policy(sentiment)
        return sentiment


@transaction.atomic
def store_sentiment(
    *,
    message_id: int,
    source_hash: str,
    engine_label: str,
    emotion: str,
    polarity: str,
    score: float,
    hostile_score: float,
) -> Sentiment | None:
    message = Message.objects.select_for_update().filter(pk=message_id).first()
    if message is None or message.hidden or _hash(message.text) != source_hash:
        return None  # gone, hidden or edited while the model ran: the edit enqueued a fresh task
    sentiment, _ = Sentiment.objects.update_or_create(
        message=message,
        defaults={
            "emotion": emotion,
            "polarity": polarity,
            "score": score,
            "hostile_score": hostile_score,
            "engine": engine_label,
            "source_text_hash": source_hash,
        },
    )
    seconds = (timezone.now() - message.created).total_seconds()
    metrics.EMOTION_SECONDS.observe(seconds)
    logger.info("emotion stored: %s by %s, %.3f s after the send", emotion, engine_label, seconds)
    _apply_policy(sentiment, announce=True)
    return sentiment


def _apply_policy(sentiment: Sentiment, *, announce: bool = False) -> None:
    """Runs the room's policy over the original's and the translations' scores; flags (and maybe hides)."""
    message = Message.objects.select_related("room").get(pk=sentiment.message_id)
    room = message.room
    thresholds = ModerationThresholds(flag=room.flag_threshold, auto_hide=room.auto_hide_threshold)
    translations = {
        language: TranslationScore(emotion="", hostile_score=score)
        for language, score in sentiment.translation_hostile.items()
    }
    verdict = decide(sentiment, translations, thresholds)
    newly_flagged = verdict.flagged and not sentiment.flagged
    if verdict.flagged != sentiment.flagged:
        sentiment.flagged = verdict.flagged
        sentiment.save(update_fields=["flagged", "updated"])
    if newly_flagged:
        metrics.FLAGS.inc()
        flag = Flag.objects.filter(message=message, status=Flag.Status.OPEN).first()
        if flag is None:
            flag = Flag.objects.create(
                message=message,
                reason=verdict.reason,
                score=verdict.score,
                trigger=verdict.trigger or "original",
                model_version=sentiment.engine,
            )
            ModerationAction.objects.create(
                flag=flag,
                action=ModerationAction.Action.FLAGGED,
                model_version=sentiment.engine,
                score=verdict.score,
            )
        if verdict.auto_hide:
            _hide(message, flag, actor=None, note=verdict.reason, action=ModerationAction.Action.AUTO_HIDE)
    if announce or newly_flagged:
        event = events.message_sentiment(message_id=message.id, seq=message.seq, **sentiment_payload(sentiment))
        transaction.on_commit(partial(realtime.broadcast_to_room, message.room_id, event))


def _hide(message: Message, flag: Flag, *, actor: User | None, note: str, action: str) -> None:
    message.hidden = True
    message.save(update_fields=["hidden"])
    flag.status = Flag.Status.HIDDEN
    flag.save(update_fields=["status"])
    ModerationAction.objects.create(
        flag=flag, actor=actor, action=action, note=note, model_version=flag.model_version, score=flag.score
    )
    event = events.message_hidden(message_id=message.id, seq=message.seq, flag_id=flag.id)
    transaction.on_commit(partial(realtime.broadcast_to_room, message.room_id, event))


@transaction.atomic
def resolve_flag(*, flag_id: int, moderator: User, action: str, note: str = "") -> Flag:
    flag = Flag.objects.select_for_update().select_related("message").filter(pk=flag_id).first()
    if flag is None:
        raise ModerationError("not_found", f"No flag {flag_id}.")
    if flag.status != Flag.Status.OPEN:
        raise ModerationError("already_resolved", f"Flag {flag_id} is already {flag.status}.")
    if action == "hide":
        _hide(flag.message, flag, actor=moderator, note=note, action=ModerationAction.Action.HIDE)
    elif action == "approve":
        if flag.message.hidden:  # an upheld appeal: the message comes back (clients see it on next load)
            flag.message.hidden = False
            flag.message.save(update_fields=["hidden"])
        flag.status = Flag.Status.APPROVED
        flag.save(update_fields=["status"])
        ModerationAction.objects.create(
            flag=flag,
            actor=moderator,
            action=ModerationAction.Action.APPROVE,
            note=note,
            model_version=flag.model_version,
            score=flag.score,
        )
    else:
        raise ModerationError("invalid_action", "action must be 'approve' or 'hide'.")
    return flag


@transaction.atomic
def appeal(*, flag_id: int, author: User, text: str) -> Flag:
    """The author of a hidden message may appeal once: the message goes back to the queue, still hidden."""
    flag = Flag.objects.select_for_update().select_related("message").filter(pk=flag_id).first()
    if flag is None or flag.message.author_id != author.id:
        raise ModerationError("not_found", f"No flag {flag_id} on a message of yours.")
    if flag.status != Flag.Status.HIDDEN:
        raise ModerationError("not_hidden", "Only a hidden message can be appealed.")
    if Flag.objects.filter(message=flag.message, appealed=True).exists():
        raise ModerationError("already_appealed", "This message was appealed already.")
    flag.appealed = True
    flag.appeal_text = text[:2000]
    flag.status = Flag.Status.OPEN
    flag.created = timezone.now()
    flag.save(update_fields=["appealed", "appeal_text", "status", "created"])
    ModerationAction.objects.create(
        flag=flag,
        actor=author,
        action=ModerationAction.Action.APPEAL,
        note=text[:2000],
        model_version=flag.model_version,
    )
    return flag


@transaction.atomic
def grant_moderator(*, user: User) -> None:
    from django.contrib.auth.models import Group

    group, _ = Group.objects.get_or_create(name="moderators")
    user.groups.add(group)
