"""Process faults mid-chat: the web process (Daphne) killed with SIGKILL, the Redis server killed and started
again. Clients reconnect with backoff and resume by seq; the database keeps every acked original."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest

from tests.integration.wsclient import run_async
from tests.reliability.conftest import FaultProduct, ResilientClient, fault_messages

pytestmark = pytest.mark.integration

SEND_INTERVAL_S = 0.05


async def _chat_through(product: FaultProduct, slug: str, tokens: list[str], count: int, fault, recover) -> dict:
    """Clients chat `count` messages; after a third of them `fault()` runs, then `recover()` (both blocking,
    run in a thread). Returns the clients and the measured recovery time."""
    clients = [ResilientClient(product, slug, token, f"c{i}") for i, token in enumerate(tokens)]
    for client in clients:
        await client.connect()
    sent: list[tuple[str, str, int]] = []  # (client_id, text, author index)
    faulted_at = recovered_at = None
    for i in range(count):
        if i == count // 3:
            await asyncio.to_thread(fault)
            faulted_at = time.monotonic()
            await asyncio.sleep(1.0)  # a real outage, not a blip
            await asyncio.to_thread(recover)
            recovered_at = time.monotonic()
        author = i % len(clients)
        text = f"The house number {i} is very big."
        message = await clients[author].send(text)
        sent.append((message["client_id"], text, author))
        await asyncio.sleep(SEND_INTERVAL_S)
    back_at = time.monotonic()
    for client in clients:
        await client.wait_for_seq(count, timeout=60)
    converged_at = time.monotonic()
    for client in clients:
        await client.close()
    return {
        "clients": clients,
        "sent": sent,
        "outage_s": recovered_at - faulted_at,
        "converged_s": converged_at - recovered_at,
        "sending_s": back_at - recovered_at,
    }


def _check_no_loss(product: FaultProduct, slug: str, token: str, result: dict, count: int) -> list[dict]:
    history = product.history(slug, token)
    assert [m["seq"] for m in history] == list(range(1, count + 1))
    by_client_id = {m["client_id"]: m for m in history}
    assert len(by_client_id) == count  # each retried send stored exactly once
    assert {cid for cid, _, _ in result["sent"]} == set(by_client_id)
    for client in result["clients"]:
        assert client.seen == set(range(1, count + 1)), f"{client.name} has a gap"
        assert client.duplicates == [], f"{client.name} got seqs twice: {client.duplicates}"
    return history


def _wait_translated(product: FaultProduct, slug: str, token: str, count: int, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        history = product.history(slug, token)
        if sum(1 for m in history if m["translations"].get("es", {}).get("status") == "ok") == count:
            return time.monotonic() - started
        time.sleep(1)
    pending = [m["seq"] for m in product.history(slug, token) if m["translations"].get("es", {}).get("status") != "ok"]
    raise AssertionError(f"{len(pending)} messages still without a Spanish translation: {pending[:20]}")


def test_daphne_killed_and_restarted_clients_resume_without_gap_or_duplicate(make_fault_product):
    count = fault_messages(30)
    product = make_fault_product()
    slug, tokens = product.room_with(("en", "en"), ("es", "es"), ("en", "en"))

    def recover() -> None:
        product.start_web()
        product.wait_healthy()

    result = run_async(_chat_through(product, slug, tokens, count, product.kill_web, recover))
    _check_no_loss(product, slug, tokens[1], result, count)
    assert all(client.reconnects >= 1 for client in result["clients"])
    print(f"\ndaphne restart: outage {result['outage_s']:.1f}s, converged {result['converged_s']:.1f}s after restart")
    _wait_translated(product, slug, tokens[1], count, timeout=90)


def _redis_restart_run(make_fault_product) -> tuple[FaultProduct, str, list[str], dict, int]:
    count = fault_messages(30)
    product = make_fault_product()
    slug, tokens = product.room_with(("en", "en"), ("es", "es"), ("en", "en"))
    result = run_async(
        _chat_through(product, slug, tokens, count, product.redis_server.kill, product.redis_server.start)
    )
    return product, slug, tokens, result, count


def test_redis_killed_and_restarted_no_original_lost_clients_converge(make_fault_product):
    product, slug, tokens, result, count = _redis_restart_run(make_fault_product)
    _check_no_loss(product, slug, tokens[1], result, count)
    print(
        f"\nredis restart: outage {result['outage_s']:.1f}s, clients converged {result['converged_s']:.1f}s after"
        f" restart; reconnects {[c.reconnects for c in result['clients']]};"
        f" worker exit codes { ({n: p.poll() for n, p in product.processes.items()}) }"
    )


def test_redis_killed_and_restarted_pending_translations_complete(make_fault_product):
    """The tasks queued in Redis die with it (no persistence here); the workers exit on the broker loss and
    bin/respawn starts them again; the sweeper finds the messages still without a translation and re-sends them."""
    product, slug, tokens, result, count = _redis_restart_run(make_fault_product)
    _check_no_loss(product, slug, tokens[1], result, count)
    translated_s = _wait_translated(product, slug, tokens[1], count, timeout=45)
    print(f"\nredis restart: translations complete {translated_s:.1f}s after the last send")
    with sqlite3.connect(product.base_dir / "live.sqlite3") as db:
        rows = db.execute(
            "SELECT message_id, COUNT(*) FROM translation_translation WHERE language='es' GROUP BY message_id"
        ).fetchall()
    assert len(rows) == count and all(n == 1 for _, n in rows)


def test_workers_killed_repeatedly_every_message_ends_with_one_translation_and_one_emotion(make_fault_product):
    """Both model workers SIGKILLed again and again (a kill every few messages, alternating) while messages flow;
    each is started again at once. Afterwards every message has exactly one Spanish translation and one emotion.
    BRIDGE_FAULT_MESSAGES=300 for the long mode."""
    count = fault_messages(60)
    kill_every = max(count // 6, 5)
    product = make_fault_product()
    slug, tokens = product.room_with(("en", "en"), ("es", "es"))
    kills = {"translation": 0, "sentiment": 0}

    async def send_all() -> None:
        client = ResilientClient(product, slug, tokens[0], "writer")
        await client.connect()
        for i in range(count):
            await client.send(f"The garden number {i} has many flowers.")
            if i and i % kill_every == 0:
                queue = "translation" if (i // kill_every) % 2 else "sentiment"
                await asyncio.to_thread(product.kill_worker, queue)
                await asyncio.to_thread(product.start_worker, queue, 4, True)
                kills[queue] += 1
            await asyncio.sleep(SEND_INTERVAL_S)
        await client.close()

    run_async(send_all())
    done_s = _wait_translated(product, slug, tokens[1], count, timeout=120)
    started = time.monotonic()
    while True:
        with sqlite3.connect(product.base_dir / "live.sqlite3") as db:
            tagged = db.execute("SELECT COUNT(DISTINCT message_id) FROM sentiment_sentiment").fetchone()[0]
            translations = db.execute(
                "SELECT message_id, COUNT(*) FROM translation_translation WHERE language='es' GROUP BY message_id"
            ).fetchall()
        if tagged == count:
            break
        assert time.monotonic() - started < 120, f"{tagged}/{count} messages have an emotion"
        time.sleep(1)
    print(
        f"\nrepeated worker kills {kills} over {count} messages: translations complete {done_s:.1f}s and emotions "
        f"{done_s + time.monotonic() - started:.1f}s after the last send"
    )
    assert all(kills.values())
    assert len(translations) == count and all(n == 1 for _, n in translations)
