"""Two clients on the real product: Daphne, the Redis channel layer, real sockets."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
import websockets

from tests.integration.wsclient import next_of, open_socket, run_async

pytestmark = pytest.mark.integration


def test_two_clients_chat_over_redis_and_resume_after_disconnect(live_product):
    ana, ben = f"ana{uuid.uuid4().hex[:6]}", f"ben{uuid.uuid4().hex[:6]}"
    ana_token, ben_token = live_product.signup(ana, "es"), live_product.signup(ben, "en")
    _, room = live_product.api("POST", "/api/rooms", {"name": "Live"}, ana_token)
    assert live_product.api("POST", f"/api/rooms/{room['slug']}/join", {}, ben_token)[0] == 200

    async def scenario() -> None:
        a = await open_socket(live_product, room["slug"], ana_token)
        b = await open_socket(live_product, room["slug"], ben_token)
        await a.send(json.dumps({"type": "message.send", "client_id": str(uuid.uuid4()), "text": "Hola, ¿qué tal?"}))
        ack = await next_of(a, "message.ack")
        received = await next_of(b, "message.new")
        assert received["message"]["id"] == ack["message"]["id"]
        assert received["message"]["text"] == "Hola, ¿qué tal?"
        await b.close()
        for i in range(3):
            await a.send(json.dumps({"type": "message.send", "client_id": str(uuid.uuid4()), "text": f"mensaje {i}"}))
            await next_of(a, "message.ack")
        b = await open_socket(live_product, room["slug"], ben_token)
        await b.send(json.dumps({"type": "resume", "after": received["message"]["seq"]}))
        seqs = []
        async with asyncio.timeout(10):
            while True:
                event = json.loads(await b.recv())
                if event["type"] == "message.new":
                    seqs.append(event["message"]["seq"])
                elif event["type"] == "resume.done":
                    break
        assert seqs == [2, 3, 4]
        await a.close()
        await b.close()

    run_async(scenario())


def test_foreign_origin_and_non_member_are_refused_at_the_handshake(live_product):
    owner, stranger = f"own{uuid.uuid4().hex[:6]}", f"str{uuid.uuid4().hex[:6]}"
    owner_token, stranger_token = live_product.signup(owner, "en"), live_product.signup(stranger, "en")
    _, room = live_product.api("POST", "/api/rooms", {"name": "Private"}, owner_token)

    async def scenario() -> None:
        with pytest.raises(websockets.InvalidStatus) as caught:
            await open_socket(live_product, room["slug"], owner_token, origin="http://evil.example")
        assert caught.value.response.status_code == 403
        with pytest.raises(websockets.InvalidStatus) as caught:
            await open_socket(live_product, room["slug"], stranger_token)
        assert caught.value.response.status_code == 403

    run_async(scenario())


def test_healthz_on_the_live_product(live_product):
    status, body = live_product.api("GET", "/healthz")
    assert status == 200, body
    assert body["checks"] == {"database": True, "channel_layer": True}
    assert body["readiness"]["broker"] is True
    # A worker answers the readiness probe from its main thread, which a first model load (or a backlog another
    # test left) can keep busy past the probe's timeout for a few seconds: readiness must come, not be instant.
    deadline = time.monotonic() + 30
    while body["readiness"]["workers"]["translation"] < 1 or body["readiness"]["workers"]["sentiment"] < 1:
        assert time.monotonic() < deadline, body
        time.sleep(1)
        status, body = live_product.api("GET", "/healthz")
        assert status == 200, body
    assert "degraded" not in body, body
