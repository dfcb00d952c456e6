"""Translation end to end: websocket -> Daphne -> Celery worker (real process) -> Apertium -> websocket."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.integration.wsclient import next_of, open_socket, run_async

pytestmark = pytest.mark.integration


def test_english_and_spanish_readers_get_each_other_translated(live_product):
    slug, (en_token, es_token) = live_product.room_with(("en", "en"), ("es", "es"))

    async def scenario() -> None:
        en = await open_socket(live_product, slug, en_token)
        es = await open_socket(live_product, slug, es_token)
        await en.send(
            json.dumps(
                {
                    "type": "message.send",
                    "client_id": str(uuid.uuid4()),
                    "text": "The house is very big and the dog is happy.",
                }
            )
        )
        ack = await next_of(en, "message.ack")
        assert ack["message"]["language"] == "en"
        translated = await next_of(es, "message.translated", timeout=60)
        assert translated["id"] == ack["message"]["id"] and translated["language"] == "es"
        assert translated["status"] == "ok"
        assert "casa" in translated["text"].lower() and "perro" in translated["text"].lower()
        assert translated["engine"].startswith("apertium-en-es@")
        await es.send(
            json.dumps(
                {
                    "type": "message.send",
                    "client_id": str(uuid.uuid4()),
                    "text": "Mi hermana trabaja en una tienda grande.",
                }
            )
        )
        back = await next_of(en, "message.translated", timeout=60)
        assert back["language"] == "en" and "sister" in back["text"].lower()
        await en.close()
        await es.close()

    run_async(scenario())
    # History carries the reader's translation too.
    _, listed = live_product.api("GET", f"/api/rooms/{slug}/messages", token=es_token)
    first = listed["messages"][0]
    assert first["translations"]["es"]["status"] == "ok"


def test_french_reader_gets_english_by_pivot_and_unknown_pair_is_untranslated(live_product):
    slug, (en_token, fr_token, ja_token) = live_product.room_with(("en", "en"), ("fr", "fr"), ("ja", "ja"))

    async def scenario() -> None:
        en = await open_socket(live_product, slug, en_token)
        fr = await open_socket(live_product, slug, fr_token)
        ja = await open_socket(live_product, slug, ja_token)
        await en.send(
            json.dumps(
                {
                    "type": "message.send",
                    "client_id": str(uuid.uuid4()),
                    "text": "My brother has a small red car.",
                }
            )
        )
        to_fr = await next_of(fr, "message.translated", timeout=60)
        assert to_fr["status"] == "ok" and " > " in to_fr["engine"], to_fr
        assert "voiture" in to_fr["text"].lower()
        to_ja = await next_of(ja, "message.translated", timeout=60)
        assert to_ja["status"] == "untranslated" and to_ja["text"] is None and "no route" in to_ja["reason"]
        for ws in (en, fr, ja):
            await ws.close()

    run_async(scenario())


def test_worker_killed_mid_run_loses_and_duplicates_nothing(live_product):
    """SIGKILL the translation worker while messages are in flight; after a restart every message has exactly
    one Spanish translation (acks_late + reject-on-worker-lost + the idempotent upsert)."""
    slug, (en_token, es_token) = live_product.room_with(("en", "en"), ("es", "es"))
    count = 12
    live_product.kill_worker("translation")

    async def send_all() -> None:
        en = await open_socket(live_product, slug, en_token)
        for i in range(count):
            await en.send(
                json.dumps(
                    {
                        "type": "message.send",
                        "client_id": str(uuid.uuid4()),
                        "text": f"The weather is nice today, number {i}.",
                    }
                )
            )
            await next_of(en, "message.ack")
        await en.close()

    run_async(send_all())

    def translated() -> list[dict]:
        _, listed = live_product.api("GET", f"/api/rooms/{slug}/messages?limit=200", token=es_token)
        return [m for m in listed["messages"] if m["translations"].get("es", {}).get("status") == "ok"]

    live_product.start_worker("translation")
    deadline = time.monotonic() + 60
    while not translated() and time.monotonic() < deadline:
        time.sleep(0.05)
    live_product.kill_worker("translation")  # mid-run: some tasks done, others reserved but not acked
    killed_after = len(translated())
    assert killed_after < count, "the worker finished everything before it could be killed"
    live_product.start_worker("translation")

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        _, listed = live_product.api("GET", f"/api/rooms/{slug}/messages?limit=200", token=es_token)
        done = [m for m in listed["messages"] if m["translations"].get("es", {}).get("status") == "ok"]
        if len(done) == count:
            break
        time.sleep(1)
    assert len(listed["messages"]) == count
    assert len(done) == count
    # Exactly one row per (message, language) is guaranteed by the unique key; check the database agrees.
    import sqlite3

    with sqlite3.connect(live_product.base_dir / "live.sqlite3") as db:
        rows = db.execute(
            "SELECT message_id, COUNT(*) FROM translation_translation WHERE language='es' GROUP BY message_id"
        ).fetchall()
    ids = {m["id"] for m in listed["messages"]}
    assert {mid for mid, _ in rows} >= ids and all(n == 1 for _, n in rows)
