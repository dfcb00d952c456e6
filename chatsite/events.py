"""Every event the server sends to a websocket client is built here, and only here.

docs/protocol.md documents each type in EVENT_TYPES; tests/test_protocol_documented.py fails when one is missing.
"""

from __future__ import annotations

from typing import Any

EVENT_TYPES: set[str] = set()


def _event(event_type: str, **fields: Any) -> dict[str, Any]:
    return {"type": event_type, **fields}


def _register(*types: str) -> None:
    EVENT_TYPES.update(types)


_register(
    "message.new",
    "message.ack",
    "message.translated",
    "message.sentiment",
    "message.hidden",
    "message.edited",
    "resume.done",
    "language.changed",
    "typing",
    "presence",
    "error",
)


def message_new(message: dict[str, Any]) -> dict[str, Any]:
    return _event("message.new", message=message)


def message_ack(client_id: str | None, message: dict[str, Any]) -> dict[str, Any]:
    return _event("message.ack", client_id=client_id, message=message)


def message_translated(
    *,
    message_id: int,
    seq: int,
    language: str,
    status: str,
    text: str | None,
    engine: str | None,
    reason: str | None,
) -> dict[str, Any]:
    return _event(
        "message.translated",
        id=message_id,
        seq=seq,
        language=language,
        status=status,
        text=text,
        engine=engine,
        reason=reason,
    )


def message_sentiment(
    *,
    message_id: int,
    seq: int,
    emotion: str,
    polarity: str,
    score: float,
    flagged: bool,
    engine: str | None = None,
) -> dict[str, Any]:
    return _event(
        "message.sentiment",
        id=message_id,
        seq=seq,
        emotion=emotion,
        polarity=polarity,
        score=score,
        flagged=flagged,
        engine=engine,
    )


def message_hidden(*, message_id: int, seq: int, flag_id: int | None = None) -> dict[str, Any]:
    # flag_id lets the author appeal from the chat page (only the author may; the API checks).
    return _event("message.hidden", id=message_id, seq=seq, flag_id=flag_id)


def message_edited(*, message_id: int, seq: int, text: str, edited: str) -> dict[str, Any]:
    return _event("message.edited", id=message_id, seq=seq, text=text, edited=edited)


def resume_done(seq: int) -> dict[str, Any]:
    return _event("resume.done", seq=seq)


def language_changed(language: str) -> dict[str, Any]:
    return _event("language.changed", language=language)


def typing(username: str) -> dict[str, Any]:
    return _event("typing", user=username)


def presence(online: list[str]) -> dict[str, Any]:
    return _event("presence", online=online)


def error(code: str, detail: str, client_id: str | None = None) -> dict[str, Any]:
    return _event("error", code=code, detail=detail, client_id=client_id)
