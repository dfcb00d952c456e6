"""Hypothesis drives random send / disconnect / reconnect-with-resume sequences through the real consumer stack.

Invariant: whatever the sequence, the reader ends up having seen every message exactly once, in seq order.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from chatsite import services
from chatsite.asgi import application
from chatsite.models import User
from tests.conftest import TEST_PASSWORD

HEADERS = [(b"host", b"127.0.0.1:8000"), (b"origin", b"http://127.0.0.1:8000")]
_names = itertools.count()


def _create_world() -> tuple[str, str, str]:
    n = next(_names)
    writer = User.objects.create_user(f"writer{n}-{uuid.uuid4().hex[:4]}", password=TEST_PASSWORD, language="en")
    reader = User.objects.create_user(f"reader{n}-{uuid.uuid4().hex[:4]}", password=TEST_PASSWORD, language="en")
    room = services.create_room(name=f"Stateful {n}", creator=writer)
    services.join_room(room=room, user=reader)
    return room.slug, services.issue_token(user=writer), services.issue_token(user=reader)


class ResumeMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.slug, writer_token, self.reader_token = self.run(database_sync_to_async(_create_world)())
        self.writer = self.run(self._open(writer_token))
        self.reader: WebsocketCommunicator | None = self.run(self._open(self.reader_token))
        self.sent: list[int] = []
        self.seen: list[int] = []  # every message.new seq the reader received, duplicates included

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    async def _open(self, token: str) -> WebsocketCommunicator:
        communicator = WebsocketCommunicator(
            application, f"/ws/rooms/{self.slug}/", headers=[*HEADERS, (b"authorization", f"Bearer {token}".encode())]
        )
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        return communicator

    async def _drain_reader(self) -> None:
        """Reads the reader's queue until it holds nothing more (live events arrive promptly in memory)."""
        # receive_nothing, not a timed-out receive: a timeout would cancel the application under test.
        while not await self.reader.receive_nothing(timeout=0.15):
            event = await self.reader.receive_json_from(timeout=5)
            if event["type"] == "message.new":
                self.seen.append(event["message"]["seq"])

    @rule(text=st.text(min_size=1, max_size=40).filter(str.strip), burst=st.integers(1, 3))
    def send(self, text: str, burst: int) -> None:
        async def go() -> None:
            for _ in range(burst):
                await self.writer.send_json_to({"type": "message.send", "client_id": str(uuid.uuid4()), "text": text})
                while True:
                    event = await self.writer.receive_json_from(timeout=5)
                    if event["type"] == "message.ack":
                        self.sent.append(event["message"]["seq"])
                        break

        self.run(go())

    @precondition(lambda self: self.reader is not None)
    @rule()
    def reader_receives(self) -> None:
        self.run(self._drain_reader())

    @precondition(lambda self: self.reader is not None)
    @rule(read_first=st.booleans())
    def reader_disconnects(self, read_first: bool) -> None:
        if read_first:
            self.run(self._drain_reader())
        self.run(self.reader.disconnect())
        self.reader = None

    @precondition(lambda self: self.reader is None)
    @rule()
    def reader_resumes(self) -> None:
        async def go() -> None:
            self.reader = await self._open(self.reader_token)
            after = max(self.seen, default=0)
            await self.reader.send_json_to({"type": "resume", "after": after})
            while True:
                event = await self.reader.receive_json_from(timeout=5)
                if event["type"] == "message.new":
                    self.seen.append(event["message"]["seq"])
                elif event["type"] == "resume.done":
                    assert event["seq"] == max(self.sent, default=0)
                    break

        self.run(go())

    @invariant()
    def never_a_duplicate_or_out_of_order(self) -> None:
        assert self.seen == sorted(set(self.seen))

    def teardown(self) -> None:
        if self.reader is None:
            self.reader_resumes()
        self.run(self._drain_reader())
        assert self.seen == self.sent, "the reader must have seen every message exactly once, in order"
        self.run(self.writer.disconnect())
        self.run(self.reader.disconnect())
        self.loop.close()


@pytest.mark.django_db(transaction=True)
def test_resume_never_loses_or_duplicates():
    run_state_machine_as_test(
        ResumeMachine,
        settings=settings(
            max_examples=12, stateful_step_count=15, deadline=None, suppress_health_check=list(HealthCheck)
        ),
    )


def test_events_are_json_serialisable():
    from chatsite import events

    assert json.loads(json.dumps(events.error("x", "y"))) == {
        "type": "error",
        "code": "x",
        "detail": "y",
        "client_id": None,
    }
