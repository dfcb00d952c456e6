"""The one module that names channel-layer groups and sends to them.

Layer messages carry a ready-built client event (see events.py) under "event"; the consumer forwards it. The
channel layer is at-most-once: nothing here is the truth, the database is, and clients resume from it.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

FORWARD = "chat.event"  # consumer handler chat_event: forward to the client as is
MEMBERSHIP_ENDED = "membership.ended"  # consumer handler membership_ended: close the socket
SESSION_ENDED = "session.ended"  # consumer handler session_ended: close the socket


def room_group(room_id: int) -> str:
    return f"room.{room_id}"


def room_language_group(room_id: int, language: str) -> str:
    return f"room.{room_id}.lang.{language}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def _send(group: str, payload: dict[str, Any]) -> None:
    async_to_sync(get_channel_layer().group_send)(group, payload)


def broadcast_to_room(room_id: int, event: dict[str, Any]) -> None:
    _send(room_group(room_id), {"type": FORWARD, "event": event})


def broadcast_to_readers(room_id: int, language: str, event: dict[str, Any]) -> None:
    """To the members of the room who read `language` (each consumer sits in the group of its reader's language)."""
    _send(room_language_group(room_id, language), {"type": FORWARD, "event": event})


def end_membership(user_id: int, room_id: int) -> None:
    _send(user_group(user_id), {"type": MEMBERSHIP_ENDED, "room_id": room_id})


def end_sessions(user_id: int) -> None:
    _send(user_group(user_id), {"type": SESSION_ENDED})


async def abroadcast_to_room(room_id: int, event: dict[str, Any], *, exclude_channel: str | None = None) -> None:
    await get_channel_layer().group_send(
        room_group(room_id), {"type": FORWARD, "event": event, "exclude_channel": exclude_channel}
    )
