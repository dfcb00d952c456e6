"""Structured logs on the live product: the lines about one message carry its id in the web process and in both
workers, and no log anywhere contains the message's text."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.integration.wsclient import next_of, open_socket, run_async

pytestmark = pytest.mark.integration


def _json_lines(text: str) -> list[dict]:
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except ValueError:
                continue
    return lines


def test_a_message_can_be_followed_through_the_logs_and_its_text_is_never_logged(live_product):
    slug, (en_token, es_token) = live_product.room_with(("en", "en"), ("es", "es"), name="Logs")
    secret = f"My secret pancake recipe {uuid.uuid4().hex[:8]} needs three eggs."

    async def scenario() -> int:
        en = await open_socket(live_product, slug, en_token)
        es = await open_socket(live_product, slug, es_token)
        await en.send(json.dumps({"type": "message.send", "client_id": str(uuid.uuid4()), "text": secret}))
        ack = await next_of(en, "message.ack")
        await next_of(es, "message.translated", timeout=60)
        await next_of(en, "message.sentiment", timeout=60)
        await en.close()
        await es.close()
        return ack["message"]["id"]

    message_id = run_async(scenario())
    time.sleep(1)  # the workers' last lines
    web, translation, sentiment = (live_product.log(name) for name in ("web", "worker-translation", "worker-sentiment"))
    about = {
        name: [line for line in _json_lines(text) if line.get("message_id") == message_id]
        for name, text in (("web", web), ("translation", translation), ("sentiment", sentiment))
    }
    assert any(line["msg"].startswith("message stored") for line in about["web"]), about["web"]
    assert any(line["msg"].startswith("translation stored: ok into es") for line in about["translation"])
    assert any(line.get("task") == "translation.translate_message" for line in about["translation"])
    assert any(line["msg"].startswith("emotion stored") for line in about["sentiment"])
    for name in ("web", "worker-translation", "worker-sentiment", "beat"):
        assert "pancake" not in live_product.log(name), f"message text in the {name} log"
