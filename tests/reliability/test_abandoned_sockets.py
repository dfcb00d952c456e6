"""Sockets that vanish without a close frame (a laptop lid shut, a phone losing its network) must not wedge the web
process: the room's other members keep getting every message live, /healthz still finds the channel layer, and a
new socket works. (Once, /healthz said `channel_layer: false` right after a test abandoned sockets mid-scenario;
this is the targeted check.)"""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from tests.integration.wsclient import next_of, open_socket, run_async
from tests.reliability.conftest import ResilientClient

pytestmark = pytest.mark.integration

GHOST_SOCKETS = 8


def test_abandoned_sockets_leave_delivery_and_the_channel_layer_working(live_product):
    slug, (sender_token, reader_token, ghost_token) = live_product.room_with(
        ("abandon_a", "en"), ("abandon_b", "en"), ("abandon_g", "en")
    )

    async def scenario() -> tuple[ResilientClient, dict]:
        sender = ResilientClient(live_product, slug, sender_token, "sender")
        reader = ResilientClient(live_product, slug, reader_token, "reader")
        await sender.connect()
        await reader.connect()
        ghosts = [await open_socket(live_product, slug, ghost_token) for _ in range(GHOST_SOCKETS)]
        first = await sender.send("before the ghosts vanish")
        for i, ghost in enumerate(ghosts):
            if i % 2:  # half of them vanish with a send of their own in flight
                await ghost.send(json.dumps({"type": "message.send", "client_id": str(uuid.uuid4()), "text": "gone"}))
            ghost.transport.abort()  # no close frame, no FIN handshake wait: the TCP connection is just gone
        for i in range(20):
            await sender.send(f"after the ghosts vanished {i}")
            await asyncio.sleep(0.05)
        last = await sender.send("the last one")
        await reader.wait_for_seq(last["seq"], timeout=30)
        # A new socket of the same user gets live messages.
        fresh = await open_socket(live_product, slug, ghost_token)
        await fresh.send(json.dumps({"type": "resume", "after": last["seq"]}))
        await next_of(fresh, "resume.done", timeout=10)
        probe = await sender.send("to the fresh socket")
        arrived = await next_of(fresh, "message.new", timeout=10)
        await fresh.close()
        for client in (sender, reader):
            await client.close()
        return reader, {"first": first, "probe": probe, "arrived": arrived}

    reader, seen = run_async(scenario())
    assert reader.reconnects == 0, "the reader had to reconnect: live delivery stopped"
    assert reader.duplicates == []
    assert set(range(seen["first"]["seq"], seen["probe"]["seq"])) <= reader.seen
    assert seen["arrived"]["message"]["seq"] == seen["probe"]["seq"]
    for _ in range(3):
        _, health = live_product.api("GET", "/healthz")
        assert health["checks"]["channel_layer"] is True, health
