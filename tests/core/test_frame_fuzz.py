"""Fuzzing the room websocket with Hypothesis: whatever a client sends (any text, any JSON, the known frame types
with values of any JSON type, binary frames), the server answers with events or clear `error` frames, never
crashes the consumer, and keeps the socket open; the socket still works afterwards."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatsite import services
from chatsite.asgi import application
from tests.core.test_consumer import HOST, ORIGIN

pytestmark = pytest.mark.django_db(transaction=True)

FRAME_TYPES = ["message.send", "message.edit", "resume", "language.set", "typing", "ping", "", "message.new"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
known_frames = st.fixed_dictionaries(
    {"type": st.sampled_from(FRAME_TYPES)},
    optional={
        "client_id": json_values | st.uuids().map(str),
        "text": json_values | st.text(max_size=200),
        "after": json_values,
        "language": json_values | st.sampled_from(["en", "es", "xx", "EN", ""]),
        "id": json_values,
    },
)
frames = st.one_of(
    known_frames.map(json.dumps),
    json_values.map(json.dumps),  # JSON that is not an object, or an object without a type
    st.text(max_size=100),  # not JSON at all (lone surrogates excluded: a websocket text frame is valid UTF-8)
    st.binary(max_size=64),
)
ERROR_CODES = {
    "bad_frame", "bad_json", "unknown_type", "invalid_client_id", "rate_limited", "invalid_text", "text_too_long",
    "empty_text",
    "unknown_language", "not_found", "forbidden", "invalid_id",
}  # fmt: skip


@pytest.fixture
def member_token(make_db_user, make_room):
    user = make_db_user(language="en")
    room = make_room(user)
    return room.slug, services.issue_token(user=user)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sent=st.lists(frames, min_size=1, max_size=8))
def test_any_frames_get_answers_or_clear_errors_and_the_socket_stays_open(member_token, sent):
    slug, token = member_token
    errors = async_to_sync(_drive)(slug, token, sent)
    for error in errors:
        assert error["code"] in ERROR_CODES, error
        assert isinstance(error["detail"], str) and error["detail"]


async def _drive(slug: str, token: str, sent: list[str | bytes]) -> list[dict]:
    headers = [HOST, ORIGIN, (b"authorization", f"Bearer {token}".encode())]
    communicator = WebsocketCommunicator(application, f"/ws/rooms/{slug}/", headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    try:
        for frame in sent:
            # send_input, not send_to: an empty frame is a case too, and send_to refuses it.
            key = "bytes" if isinstance(frame, bytes) else "text"
            await communicator.send_input({"type": "websocket.receive", key: frame})
        # The socket still works: a resume is answered with resume.done, after every answer to the fuzz frames.
        await communicator.send_json_to({"type": "resume", "after": 10**9})
        errors = []
        while True:
            output = await communicator.receive_output(timeout=10)
            assert output["type"] == "websocket.send", f"the socket was closed: {output}"
            event = json.loads(output["text"])
            if event["type"] == "error":
                errors.append(event)
            if event["type"] == "resume.done":
                return errors
    finally:
        await communicator.disconnect()
        await database_sync_to_async(lambda: None)()
