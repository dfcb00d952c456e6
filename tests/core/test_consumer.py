"""The room websocket through Channels' WebsocketCommunicator and the full ASGI stack (origin check, auth)."""

from __future__ import annotations

import json
import uuid

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.cache import cache

from chatsite import services
from chatsite.asgi import application
from chatsite.models import Message

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
HOST = (b"host", b"127.0.0.1:8000")


@pytest.fixture(autouse=True)
def _fresh_limits():
    """Rate-limit windows live in Redis keyed by user id, and ids repeat across tests: start each test clean."""
    import redis
    from django.conf import settings

    from chatsite.ratelimit import RATE_KEY_PREFIX

    cache.clear()
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(f"{RATE_KEY_PREFIX}*"):
        client.delete(key)


async def token_for(user) -> str:
    return await database_sync_to_async(services.issue_token)(user=user)


async def connect(slug: str, token: str | None, origin=ORIGIN) -> tuple[WebsocketCommunicator, bool, int | None]:
    headers = [HOST]
    if origin is not None:
        headers.append(origin)
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    communicator = WebsocketCommunicator(application, f"/ws/rooms/{slug}/", headers=headers)
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


async def receive_until(communicator: WebsocketCommunicator, event_type: str, timeout: float = 5) -> dict:
    while True:
        event = await communicator.receive_json_from(timeout=timeout)
        if event["type"] == event_type:
            return event


async def receive_close(communicator: WebsocketCommunicator, timeout: float = 5) -> int:
    while True:
        output = await communicator.receive_output(timeout=timeout)
        if output["type"] == "websocket.close":
            return output["code"]


async def send_message(communicator, text: str, client_id: str | None = None) -> dict:
    client_id = client_id or str(uuid.uuid4())
    await communicator.send_json_to({"type": "message.send", "client_id": client_id, "text": text})
    return await receive_until(communicator, "message.ack")


@pytest.fixture
def room_setup(make_db_user, make_room):
    alice, bob, eve = make_db_user("alice", "en"), make_db_user("bob", "es"), make_db_user("eve", "fr")
    room = make_room(alice, bob, name="General")
    return room, alice, bob, eve


async def test_send_acks_sender_and_delivers_to_every_member(room_setup):
    room, alice, bob, _ = room_setup
    a, ok_a, _ = await connect(room.slug, await token_for(alice))
    b, ok_b, _ = await connect(room.slug, await token_for(bob))
    assert ok_a and ok_b
    client_id = str(uuid.uuid4())
    await a.send_json_to({"type": "message.send", "client_id": client_id, "text": "Hello everyone, how are you today?"})
    # The sender gets its ack and the room's message.new, in either order (the protocol does not fix one).
    to_sender = {}
    while len(to_sender) < 2:
        event = await a.receive_json_from(timeout=5)
        if event["type"] in ("message.ack", "message.new"):
            assert event["type"] not in to_sender
            to_sender[event["type"]] = event
    ack = to_sender["message.ack"]
    assert ack["client_id"] == client_id
    assert ack["message"]["seq"] == 1 and ack["message"]["author"] == "alice"
    for new in (to_sender["message.new"], await receive_until(b, "message.new")):
        assert new["message"]["text"] == "Hello everyone, how are you today?"
        assert new["message"]["id"] == ack["message"]["id"]
    await a.disconnect()
    await b.disconnect()


async def test_same_client_id_is_answered_with_the_first_ack(room_setup):
    room, alice, _, _ = room_setup
    a, _, _ = await connect(room.slug, await token_for(alice))
    client_id = str(uuid.uuid4())
    first = await send_message(a, "once", client_id)
    second = await send_message(a, "once again?", client_id)
    assert second["message"]["id"] == first["message"]["id"] and second["message"]["text"] == "once"
    assert await database_sync_to_async(Message.objects.count)() == 1
    await a.disconnect()


async def test_refusals_at_the_handshake(room_setup):
    room, alice, _, eve = room_setup
    _, connected, _ = await connect(room.slug, None)
    assert not connected, "anonymous"
    _, connected, _ = await connect(room.slug, await token_for(eve))
    assert not connected, "non-member"
    _, connected, _ = await connect(room.slug, await token_for(alice), origin=(b"origin", b"http://evil.example"))
    assert not connected, "foreign origin"
    _, connected, _ = await connect(room.slug, await token_for(alice), origin=None)
    assert not connected, "missing origin"
    _, connected, _ = await connect("no-such-room", await token_for(alice))
    assert not connected, "unknown room"


async def test_removed_member_next_frame_is_refused(room_setup):
    room, alice, bob, _ = room_setup
    b, connected, _ = await connect(room.slug, await token_for(bob))
    assert connected
    await database_sync_to_async(services.remove_member)(room=room, user=bob)
    assert await receive_close(b) == 4403
    assert await database_sync_to_async(Message.objects.count)() == 0


async def test_membership_checked_on_every_frame(room_setup):
    """Even when the removal event is lost (the layer is at-most-once), the next frame is refused."""
    room, alice, bob, _ = room_setup
    b, _, _ = await connect(room.slug, await token_for(bob))
    from chatsite.models import Membership

    await database_sync_to_async(Membership.objects.filter(room=room, user=bob).delete)()
    await b.send_json_to({"type": "message.send", "client_id": str(uuid.uuid4()), "text": "still here?"})
    assert await receive_close(b) == 4403
    assert await database_sync_to_async(Message.objects.count)() == 0


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "bad_json"),
        ("[1, 2]", "bad_frame"),
        ('{"no": "type"}', "bad_frame"),
        ('{"type": "launch.missiles"}', "unknown_type"),
        ('{"type": "message.send", "text": "hi"}', "invalid_client_id"),
        ('{"type": "message.send", "client_id": "abc", "text": "hi"}', "invalid_client_id"),
        (
            '{"type": "message.send", "client_id": "6f1c2c6e-0d7e-4f57-9a57-0f8f1b1b7b11", "text": ""}',
            "empty_text",
        ),
        (
            '{"type": "message.send", "client_id": "6f1c2c6e-0d7e-4f57-9a57-0f8f1b1b7b12", "text": ["x"]}',
            "empty_text",
        ),
        ('{"type": "resume", "after": -1}', "bad_frame"),
        ('{"type": "resume", "after": "5"}', "bad_frame"),
        ('{"type": "language.set", "language": "xx"}', "unknown_language"),
        ('{"type": "message.edit", "id": "1", "text": "x"}', "bad_frame"),
    ],
)
async def test_bad_frames_get_an_error_and_the_socket_stays_open(room_setup, frame, code):
    room, alice, _, _ = room_setup
    a, _, _ = await connect(room.slug, await token_for(alice))
    await a.send_to(text_data=frame)
    error = await receive_until(a, "error")
    assert error["code"] == code
    if '"client_id": "6f1c' in frame:
        assert error["client_id"] == json.loads(frame)["client_id"]
    ack = await send_message(a, "still open")
    assert ack["message"]["text"] == "still open"
    assert await database_sync_to_async(Message.objects.count)() == 1
    await a.disconnect()


async def test_binary_frame_is_an_error(room_setup):
    room, alice, _, _ = room_setup
    a, _, _ = await connect(room.slug, await token_for(alice))
    await a.send_to(bytes_data=b"\x00\x01")
    assert (await receive_until(a, "error"))["code"] == "bad_frame"
    await a.disconnect()


async def test_oversized_frame_closes_with_1009(room_setup):
    room, alice, _, _ = room_setup
    a, _, _ = await connect(room.slug, await token_for(alice))
    big = json.dumps({"type": "message.send", "client_id": str(uuid.uuid4()), "text": "x" * (64 * 1024)})
    await a.send_to(text_data=big)
    assert await receive_close(a) == 1009
    assert await database_sync_to_async(Message.objects.count)() == 0


async def test_rate_limit_drops_and_answers_rate_limited(room_setup, settings):
    settings.BRIDGE_SEND_RATE_PER_MINUTE = 5
    room, alice, _, _ = room_setup
    a, _, _ = await connect(room.slug, await token_for(alice))
    codes = []
    for i in range(7):
        client_id = str(uuid.uuid4())
        await a.send_json_to({"type": "message.send", "client_id": client_id, "text": f"m{i}"})
        while True:
            event = await a.receive_json_from(timeout=5)
            if event["type"] in ("message.ack", "error"):
                codes.append(event.get("code", "ack"))
                break
    assert codes == ["ack"] * 5 + ["rate_limited"] * 2
    assert await database_sync_to_async(Message.objects.count)() == 5
    await a.disconnect()


async def test_a_burst_past_the_frame_queue_is_refused_per_frame_and_nothing_is_lost(room_setup, settings, monkeypatch):
    """Frames wait in a bounded per-connection queue; the ones past it get rate_limited with their client_id, every
    client_id gets exactly one answer, and exactly the acked ones are stored."""
    from chatsite import consumers

    monkeypatch.setattr(consumers, "MAX_QUEUED_FRAMES", 3)  # small, so a burst outruns the database for sure
    settings.BRIDGE_SEND_RATE_PER_MINUTE = 10_000
    room, alice, _, _ = room_setup
    a, _, _ = await connect(room.slug, await token_for(alice))
    client_ids = [str(uuid.uuid4()) for _ in range(60)]
    for i, client_id in enumerate(client_ids):
        await a.send_input({"type": "websocket.receive", "text": json.dumps(
            {"type": "message.send", "client_id": client_id, "text": f"burst {i}"}
        )})  # fmt: skip
    answers: dict[str, str] = {}
    while len(answers) < len(client_ids):
        event = await a.receive_json_from(timeout=10)
        if event["type"] == "message.ack":
            assert event["client_id"] not in answers
            answers[event["client_id"]] = "ack"
        elif event["type"] == "error":
            assert event["code"] == "rate_limited" and event["client_id"] not in answers, event
            answers[event["client_id"]] = event["detail"]
    refused = [cid for cid, answer in answers.items() if answer != "ack"]
    assert refused and all("in flight" in answers[cid] for cid in refused)
    stored = set(
        await database_sync_to_async(lambda: [str(c) for c in Message.objects.values_list("client_id", flat=True)])()
    )
    assert stored == {cid for cid, answer in answers.items() if answer == "ack"}
    await send_message(a, "still open")  # the socket works after the burst
    await a.disconnect()


async def test_events_reach_a_member_while_its_own_send_waits(room_setup):
    """A member's queued sends do not hold back what the room sends it: bob's message.new reaches alice before
    alice's own long burst of sends has been worked through."""
    room, alice, bob, _ = room_setup
    a, _, _ = await connect(room.slug, await token_for(alice))
    b, _, _ = await connect(room.slug, await token_for(bob))
    for i in range(30):
        await a.send_json_to({"type": "message.send", "client_id": str(uuid.uuid4()), "text": f"alice {i}"})
    await send_message(b, "bob in the middle")
    acks_before = 0
    while True:
        event = await a.receive_json_from(timeout=10)
        if event["type"] == "message.ack":
            acks_before += 1
        if event["type"] == "message.new" and event["message"]["text"] == "bob in the middle":
            break
    assert acks_before < 30
    await a.disconnect()
    await b.disconnect()


async def test_live_messages_during_a_resume_come_after_it_once(room_setup):
    """Messages stored around a resume all arrive: the replay holds every message up to resume.done's seq, in order
    (as CONTRACT.md says), and the live ones after it are newer, in order, never a replayed one again. (The replay
    used to read the room's last seq after the history, and a message stored in between was neither replayed nor
    forwarded.)"""
    room, alice, bob, _ = room_setup
    a, _, _ = await connect(room.slug, await token_for(alice))
    for i in range(1, 4):
        await send_message(a, f"before {i}")
    b, _, _ = await connect(room.slug, await token_for(bob))
    await b.send_json_to({"type": "resume", "after": 0})
    for i in range(10):  # sent while bob's resume runs: a's frames and b's replay interleave on the server
        await a.send_json_to({"type": "message.send", "client_id": str(uuid.uuid4()), "text": f"during {i}"})
    seqs, done_seq, done_at = [], None, None
    while set(seqs) != set(range(1, 14)) or done_at is None:
        event = await b.receive_json_from(timeout=10)
        if event["type"] == "message.new":
            seqs.append(event["message"]["seq"])
        elif event["type"] == "resume.done":
            done_seq, done_at = event["seq"], len(seqs)
    # Before resume.done: the replay, 1..its seq in order (after any that came live before the resume was read).
    assert seqs[:done_at][-done_seq:] == list(range(1, done_seq + 1))
    assert all(seq <= done_seq for seq in seqs[: done_at - done_seq])
    # After it: only newer ones, each once, in order.
    assert seqs[done_at:] == list(range(done_seq + 1, 14))
    assert await b.receive_nothing(timeout=0.3)
    await a.disconnect()
    await b.disconnect()


async def test_resume_replays_missed_messages_in_order_then_live(room_setup):
    room, alice, bob, _ = room_setup
    a, _, _ = await connect(room.slug, await token_for(alice))
    for i in range(1, 6):
        await send_message(a, f"message number {i}")
    b, _, _ = await connect(room.slug, await token_for(bob))
    await b.send_json_to({"type": "resume", "after": 2})
    replayed = []
    while True:
        event = await b.receive_json_from(timeout=5)
        if event["type"] == "message.new":
            replayed.append(event["message"]["seq"])
        if event["type"] == "resume.done":
            assert event["seq"] == 5
            break
    assert replayed == [3, 4, 5]
    await send_message(a, "live one")
    assert (await receive_until(b, "message.new"))["message"]["seq"] == 6
    await a.disconnect()
    await b.disconnect()


async def test_language_set_typing_and_presence(room_setup):
    room, alice, bob, _ = room_setup
    a, _, _ = await connect(room.slug, await token_for(alice))
    b, _, _ = await connect(room.slug, await token_for(bob))
    presence = await receive_until(a, "presence")
    while "bob" not in presence["online"]:
        presence = await receive_until(a, "presence")
    assert {"alice", "bob"} <= set(presence["online"])
    await b.send_json_to({"type": "typing"})
    assert (await receive_until(a, "typing"))["user"] == "bob"
    await a.send_json_to({"type": "language.set", "language": "de"})
    assert (await receive_until(a, "language.changed"))["language"] == "de"
    await alice.arefresh_from_db()
    assert alice.language == "de"
    await a.disconnect()
    await b.disconnect()


async def test_edit_broadcasts_message_edited(room_setup):
    room, alice, bob, _ = room_setup
    a, _, _ = await connect(room.slug, await token_for(alice))
    b, _, _ = await connect(room.slug, await token_for(bob))
    ack = await send_message(a, "teh typo")
    await a.send_json_to({"type": "message.edit", "id": ack["message"]["id"], "text": "the typo"})
    edited = await receive_until(b, "message.edited")
    assert edited["id"] == ack["message"]["id"] and edited["text"] == "the typo" and edited["edited"]
    await b.send_json_to({"type": "message.edit", "id": ack["message"]["id"], "text": "not yours"})
    assert (await receive_until(b, "error"))["code"] == "forbidden"
    await a.disconnect()
    await b.disconnect()
