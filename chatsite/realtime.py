"""The one module that names channel-layer groups and sends to them.

Layer messages carry a ready-built client event (see events.py) under "event"; the consumer forwards it. The
channel layer is at-most-once: nothing here is the truth, the database is, and clients resume from it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from chatsite import metrics

logger = logging.getLogger(__name__)

FORWARD = "chat.event"  # consumer handler chat_event: forward to the client as is
MEMBERSHIP_ENDED = "membership.ended"  # consumer handler membership_ended: close the socket
SESSION_ENDED = "session.ended"  # consumer handler session_ended: close the socket


def room_group(room_id: int) -> str:
    return f"room.{room_id}"


def room_language_group(room_id: int, language: str) -> str:
    return f"room.{room_id}.lang.{language}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


class _LoopSender:
    """Group sends handed over from sync threads to this process's event loop, sent there one by one in the order
    they were handed over.

    The consumers' database work runs on one shared thread. With `async_to_sync` that thread waited for every
    group send (several Redis round trips) before it could serve the next socket; handing the send over costs it
    nothing. One drain task at a time works through the hand-overs in order, so message.new events leave this
    process in seq order, as they did when the thread waited. The task ends when nothing is left (so no task
    outlives a test's event loop) and the next hand-over starts another.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pending: deque[tuple[str, dict[str, Any], Future[None]]] = deque()
        self.drainer: asyncio.Task[None] | None = None

    def usable(self) -> bool:
        return self.loop.is_running() and not self.loop.is_closed()

    def submit(self, group: str, payload: dict[str, Any]) -> Future[None]:
        sent: Future[None] = Future()
        self.loop.call_soon_threadsafe(self._enqueue, group, payload, sent)
        return sent

    def _enqueue(self, group: str, payload: dict[str, Any], sent: Future[None]) -> None:  # on the loop's thread
        self.pending.append((group, payload, sent))
        if self.drainer is None or self.drainer.done():
            self.drainer = self.loop.create_task(self._drain())

    async def _drain(self) -> None:
        layer = get_channel_layer()
        while self.pending:
            group, payload, sent = self.pending.popleft()
            try:
                await layer.group_send(group, payload)
            except Exception:
                # At-most-once, like every channel-layer send: the row is stored, clients resume from it.
                metrics.ERRORS.labels(kind="broadcast_failed").inc()
                logger.exception("group send to %s failed", group)
            finally:
                sent.set_result(None)


_sender: _LoopSender | None = None
_sender_lock = threading.Lock()


async def send_from_this_loop() -> None:
    """Route the sync side's group sends through the running event loop (called by consumers as they connect)."""
    global _sender
    loop = asyncio.get_running_loop()
    with _sender_lock:
        if _sender is None or _sender.loop is not loop or not _sender.usable():
            _sender = _LoopSender(loop)


_handed_over = threading.local()


def _send(group: str, payload: dict[str, Any]) -> None:
    sender = _sender
    if sender is not None and sender.usable():
        sent = sender.submit(group, payload)
        if getattr(_handed_over, "futures", None) is not None:
            _handed_over.futures.append(sent)
    else:  # a Celery worker, a management command, or a web process before its first websocket
        async_to_sync(get_channel_layer().group_send)(group, payload)


@contextmanager
def collecting_handovers() -> Iterator[list[Future[None]]]:
    """Collects the group sends this thread hands to the event loop inside the block, as futures that complete
    once each has been sent, so that a caller on the loop can wait for them (see `wait_until_sent`)."""
    previous = getattr(_handed_over, "futures", None)
    _handed_over.futures = collected = []
    try:
        yield collected
    finally:
        _handed_over.futures = previous


async def wait_until_sent(handovers: list[Future[None]], timeout_s: float = 5.0) -> None:
    """Waits until the handed-over group sends have left this process (never raises: they are at-most-once)."""
    if handovers:
        await asyncio.wait([asyncio.wrap_future(sent) for sent in handovers], timeout=timeout_s)


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
