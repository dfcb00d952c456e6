"""Reads of moderation."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet

from chatsite.models import User
from chatsite.selectors import message_payload, translation_payload
from sentiment.models import Flag, ModerationAction
from translation.models import Translation


def is_moderator(user: User) -> bool:
    return bool(
        user and user.is_authenticated and (user.is_superuser or user.groups.filter(name="moderators").exists())
    )


def flags(status: str | None = "open") -> QuerySet[Flag]:
    queryset = Flag.objects.select_related("message__author", "message__room", "message__sentiment").prefetch_related(
        Prefetch("message__translations", queryset=Translation.objects.all(), to_attr="reader_translations"),
        Prefetch("actions", queryset=ModerationAction.objects.select_related("actor")),
    )
    return queryset.filter(status=status) if status else queryset


def flag_payload(flag: Flag) -> dict[str, Any]:
    """A queue entry: moderators see the original text even when the message is hidden, with every score."""
    message = message_payload(flag.message)
    message["text"] = flag.message.text
    message["translations"] = {t.language: translation_payload(t) for t in flag.message.reader_translations}
    sentiment = getattr(flag.message, "sentiment", None)
    return {
        "id": flag.id,
        "message": message,
        "reason": flag.reason,
        "score": round(flag.score, 4),
        "trigger": flag.trigger,
        "model_version": flag.model_version,
        "created": flag.created.isoformat(),
        "status": flag.status,
        "appealed": flag.appealed,
        "appeal_text": flag.appeal_text,
        "scores": {
            "original": round(sentiment.hostile_score, 4) if sentiment else None,
            "translations": {k: round(v, 4) for k, v in (sentiment.translation_hostile if sentiment else {}).items()},
        },
        "audit": [
            {
                "action": action.action,
                "actor": action.actor.username if action.actor else None,
                "note": action.note,
                "model_version": action.model_version,
                "score": action.score,
                "created": action.created.isoformat(),
            }
            for action in flag.actions.all()
        ],
    }
