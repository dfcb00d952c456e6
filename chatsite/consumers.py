"""The room websocket. Thin: it parses frames, checks who may do what, and calls services and selectors.

Channels dispatches one message at a time per consumer. Client frames are therefore queued and worked through, in
order, by a task of the connection's own: while this client's send waits for the database, the room's events keep
flowing to it instead of waiting behind it. Live events that arrive while a resume reads history are held and sent
after resume.done, less those the replay already sent (the seq tells). As CONTRACT.md says, the replay holds every
message after the resume's seq, so one that came live just before the resume frame was read comes again in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from concurrent.futures import Future
from typing import Any

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from chatsite import events, metrics, presence, ratelimit, realtime, selectors, services
from chatsite.models import Message, Room

logger = logging.getLogger(__name__)

CLOSE_FORBIDDEN = 4403
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011
# Frames received but not yet handled, per connection. A well-behaved client has one or two in flight; past this
# it is outrunning its own socket's database work and gets rate_limited instead of an ever longer queue.
MAX_QUEUED_FRAMES = 64


class FrameError(Exception):
    def __init__(self, code: str, detail: str, client_id: Any = None) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail
        self.client_id = client_id if isinstance(client_id, str) else None


def parse_frame(text_data: str | None, bytes_data: bytes | None) -> dict[str, Any]:
    """A client frame as a dict with a string `type`, or FrameError naming what is wrong."""
    if text_data is None:
        raise FrameError("bad_frame", "Frames must be JSON text, not binary.")
    try:
        frame = json.loads(text_data)
    except (ValueError, RecursionError) as exc:
        raise FrameError("bad_json", "The frame is not valid JSON.") from exc
    if not isinstance(frame, dict):
        raise FrameError("bad_frame", "A frame must be a JSON object.")
    client_id = frame.get("client_id")
    if not isinstance(frame.get("type"), str):
        raise FrameError("bad_frame", "A frame needs a string 'type'.", client_id)
    return frame


class RoomConsumer(AsyncWebsocketConsumer):
    room: Room
    language: str
    replayed_through: int = 0
    joined_groups: bool = False
    frame_worker: asyncio.Task[None] | None = None
    held_during_resume: list[dict[str, Any]] | None = None  # live events that came during a resume's replay

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels' own dispatch first runs close_old_connections through sync_to_async for every event, on the one
        # thread that all consumers' database calls share: each delivery of a room event to each socket waited
        # behind other sockets' database work. Every database call here goes through database_sync_to_async, which
        # closes old connections itself, on that thread, so events that touch no database skip the hop.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_FORBIDDEN)  # before accept: the handshake is answered 403
            return
        slug = self.scope["url_route"]["kwargs"]["slug"]
        room = await database_sync_to_async(self._member_room)(slug, user)
        if room is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.room, self.user, self.language = room, user, user.language
        for group in self._groups():
            await self.channel_layer.group_add(group, self.channel_name)
        self.joined_groups = True
        self.frames: asyncio.Queue[tuple[str | None, bytes | None]] = asyncio.Queue(maxsize=MAX_QUEUED_FRAMES)
        self.frame_worker = asyncio.create_task(self._work_through_frames())
        await realtime.send_from_this_loop()
        await self.accept()
        metrics.WEBSOCKETS.inc()
        online = await presence.arrive(self.room.id, self.user.username)
        await realtime.abroadcast_to_room(self.room.id, events.presence(online))

    @staticmethod
    def _member_room(slug: str, user) -> Room | None:
        try:
            return selectors.room_for_member(slug=slug, user=user)
        except (Room.DoesNotExist, selectors.NotAMember):
            return None

    def _groups(self) -> list[str]:
        return [
            realtime.room_group(self.room.id),
            realtime.room_language_group(self.room.id, self.language),
            realtime.user_group(self.user.id),
        ]

    async def disconnect(self, code: int) -> None:
        if self.frame_worker is not None:
            # A send cut off here may still be stored (its database call runs on); the client resends its
            # client_id after reconnecting and gets that message back, never a second one.
            self.frame_worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.frame_worker
        if not self.joined_groups:
            return
        metrics.WEBSOCKETS.dec()
        for group in self._groups():
            await self.channel_layer.group_discard(group, self.channel_name)
        online = await presence.leave(self.room.id, self.user.username)
        await realtime.abroadcast_to_room(self.room.id, events.presence(online))

    async def send_event(self, event: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(event, ensure_ascii=False))

    # Client frames -------------------------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        size = len(text_data.encode("utf-8")) if text_data is not None else len(bytes_data or b"")
        if size > settings.BRIDGE_MAX_FRAME_BYTES:
            await self.close(code=CLOSE_TOO_BIG)
            return
        try:
            self.frames.put_nowait((text_data, bytes_data))
        except asyncio.QueueFull:
            try:
                client_id = parse_frame(text_data, bytes_data).get("client_id")
            except FrameError as exc:
                client_id = exc.client_id
            client_id = client_id if isinstance(client_id, str) else None
            detail = "Too many frames in flight; wait for the acks and resend."
            await self.send_event(events.error("rate_limited", detail, client_id))

    async def _work_through_frames(self) -> None:
        while True:
            text_data, bytes_data = await self.frames.get()
            try:
                await self.handle_frame(text_data, bytes_data)
            except Exception:
                # What Channels does when a handler raises: log it and end the connection, rather than leave a
                # socket whose frames nobody handles any more.
                logger.exception("handling a frame failed; closing the socket")
                await self.close(code=CLOSE_INTERNAL_ERROR)
                return

    async def handle_frame(self, text_data: str | None, bytes_data: bytes | None) -> None:
        try:
            frame = parse_frame(text_data, bytes_data)
            handler = self.FRAME_HANDLERS.get(frame["type"])
            if handler is None:
                raise FrameError("unknown_type", f"Unknown frame type {frame['type']!r}.", frame.get("client_id"))
            # Membership is checked on every frame: a member removed a moment ago must not post again. A send
            # checks it in the same trip to the database as the insert (one sync hop per message, not three).
            if frame["type"] != "message.send" and not await database_sync_to_async(selectors.is_member)(
                room_id=self.room.id, user_id=self.user.id
            ):
                await self.close(code=CLOSE_FORBIDDEN)
                return
            await handler(self, frame)
        except selectors.NotAMember:
            await self.close(code=CLOSE_FORBIDDEN)
        except FrameError as exc:
            await self.send_event(events.error(exc.code, exc.detail, exc.client_id))
        except services.ChatError as exc:
            client_id = frame.get("client_id") if isinstance(frame.get("client_id"), str) else None
            await self.send_event(events.error(exc.code, exc.detail, client_id))

    async def on_message_send(self, frame: dict[str, Any]) -> None:
        client_id = frame.get("client_id")
        if not isinstance(client_id, str):
            raise FrameError("invalid_client_id", "message.send needs a client_id (a UUID string).")
        allowed = await ratelimit.ahit(
            "send", str(self.user.id), limit=settings.BRIDGE_SEND_RATE_PER_MINUTE, window_s=60
        )
        if not allowed:
            raise FrameError("rate_limited", "Too many messages; slow down and retry shortly.", client_id)
        with metrics.SEND_SECONDS.time():
            payload, handovers = await database_sync_to_async(self._post)(frame.get("text"), client_id)
            # The ack follows the room's message.new out of this process, as when the broadcast was sent from the
            # database thread: once a client holds the ack, a member who connects later gets it by resume.
            await realtime.wait_until_sent(handovers)
            await self.send_event(events.message_ack(client_id, payload))

    def _post(self, text: Any, client_id: str) -> tuple[dict[str, Any], list[Future[None]]]:
        if not selectors.is_member(room_id=self.room.id, user_id=self.user.id):
            raise selectors.NotAMember(self.room.slug)
        with realtime.collecting_handovers() as handovers:
            message, created = services.post_message(
                room=self.room,
                author=self.user,
                text=text,
                client_id=client_id,
                max_chars=settings.BRIDGE_MAX_MESSAGE_CHARS,
            )
        if created:
            return selectors.new_message_payload(message), handovers
        # A repeated client_id: the stored message, with whatever translations and emotion it has by now.
        return selectors.message_payload(selectors.message_by_id(message.id)), handovers

    async def on_resume(self, frame: dict[str, Any]) -> None:
        after = frame.get("after", 0)
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise FrameError("bad_frame", "resume needs 'after': a non-negative integer seq.")
        # Live events that come while the replay is read are held and sent after it: the client sees history in
        # order, then live, and no live message the replay already sent.
        self.held_during_resume = []
        try:
            replayed, last = await database_sync_to_async(self._replay)(after)
            for event in replayed:
                await self.send_event(event)
            # Every message up to `last` was in the replay; later ones come live (held above until now).
            self.replayed_through = max(self.replayed_through, last)
            await self.send_event(events.resume_done(last))
        finally:
            held, self.held_during_resume = self.held_during_resume, None
        for event in held:
            await self.forward_live(event)

    def _replay(self, after: int) -> tuple[list[dict[str, Any]], int]:
        """The replay after `after` and the highest seq it covers.

        The room's last seq is read first: seqs are given out under the room row's lock and committed in order, so
        every message up to it is committed and in the replay read next, which may hold newer ones too. (Read
        after the replay, it could name a message stored in between that the replay missed, whose live event
        would then be dropped as already sent.)
        """
        last = selectors.last_seq(self.room.id)
        replayed = list(selectors.replay(room_id=self.room.id, after=after, language=self.language))
        seqs = [event["message"]["seq"] for event in replayed if event["type"] == "message.new"]
        return replayed, max([last, *seqs])

    async def on_language_set(self, frame: dict[str, Any]) -> None:
        language = frame.get("language")
        await database_sync_to_async(services.set_language)(user=self.user, language=language)
        await self.channel_layer.group_discard(
            realtime.room_language_group(self.room.id, self.language), self.channel_name
        )
        self.language = language
        await self.channel_layer.group_add(realtime.room_language_group(self.room.id, language), self.channel_name)
        await self.send_event(events.language_changed(language))

    async def on_typing(self, frame: dict[str, Any]) -> None:
        allowed = await ratelimit.ahit("typing", f"{self.user.id}:{self.room.id}", limit=30, window_s=60)
        if allowed:
            await realtime.abroadcast_to_room(
                self.room.id, events.typing(self.user.username), exclude_channel=self.channel_name
            )

    async def on_message_edit(self, frame: dict[str, Any]) -> None:
        message_id = frame.get("id")
        if isinstance(message_id, bool) or not isinstance(message_id, int):
            raise FrameError("bad_frame", "message.edit needs 'id' (the message id) and 'text'.")
        await database_sync_to_async(self._edit)(message_id, frame.get("text"))

    def _edit(self, message_id: int, text: Any) -> None:
        message = Message.objects.filter(pk=message_id, room=self.room).first()
        if message is None:
            raise services.ChatError("not_found", "No such message in this room.")
        services.edit_message(message=message, editor=self.user, text=text, max_chars=settings.BRIDGE_MAX_MESSAGE_CHARS)

    FRAME_HANDLERS = {
        "message.send": on_message_send,
        "resume": on_resume,
        "language.set": on_language_set,
        "typing": on_typing,
        "message.edit": on_message_edit,
    }

    # Channel-layer events ------------------------------------------------------------------------------------

    async def chat_event(self, payload: dict[str, Any]) -> None:
        if payload.get("exclude_channel") == self.channel_name:
            return
        if self.held_during_resume is not None:
            self.held_during_resume.append(payload["event"])
            return
        await self.forward_live(payload["event"])

    async def forward_live(self, event: dict[str, Any]) -> None:
        if event["type"] == "message.new" and event["message"]["seq"] <= self.replayed_through:
            return  # already sent by a resume
        await self.send_event(event)

    async def membership_ended(self, payload: dict[str, Any]) -> None:
        if payload.get("room_id") == self.room.id:
            await self.close(code=CLOSE_FORBIDDEN)

    async def session_ended(self, payload: dict[str, Any]) -> None:
        await self.close(code=CLOSE_FORBIDDEN)
