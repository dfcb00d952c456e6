"""A client that connects and stops reading must not hold up the room or grow the server without bound, and
catches up from history, exactly once, when it resumes."""

from __future__ import annotations

import asyncio
import statistics
import time

import pytest
import websockets

from tests.integration.wsclient import run_async
from tests.reliability.conftest import ResilientClient, fault_messages

pytestmark = pytest.mark.integration

RATE_PER_S = 20
TEXT = "The house is very big and the dog is happy. " * 60  # ~2.6 KB: fills a reader's buffers sooner


async def _steady_chat(sender: ResilientClient, reader: ResilientClient, count: int, first_seq: int) -> list[float]:
    sent_at: dict[int, float] = {}
    for i in range(count):
        before = time.monotonic()
        message = await sender.send(f"{i}. {TEXT}")
        sent_at[message["seq"]] = before
        await asyncio.sleep(max(0.0, 1 / RATE_PER_S - (time.monotonic() - before)))
    await reader.wait_for_seq(first_seq + count - 1, timeout=60)
    return [reader.received_at[seq] - at for seq, at in sent_at.items()]


def test_slow_reader_does_not_delay_others_and_catches_up_exactly_once(make_fault_product):
    count = fault_messages(60)
    product = make_fault_product(extra_env={"BRIDGE_SEND_RATE_PER_MINUTE": "100000"})
    slug, (sender_token, reader_token, slow_token) = product.room_with(("a", "en"), ("b", "en"), ("s", "en"))

    async def scenario() -> dict:
        sender = ResilientClient(product, slug, sender_token, "sender")
        reader = ResilientClient(product, slug, reader_token, "reader")
        await sender.connect()
        await reader.connect()
        baseline = await _steady_chat(sender, reader, count, first_seq=1)
        rss_before = product.web_rss_kib()
        # The slow client: a socket whose library queue holds one frame and which is never read, so TCP
        # back-pressure reaches the server.
        slow = await websockets.connect(
            f"ws://127.0.0.1:{product.port}/ws/rooms/{slug}/",
            additional_headers={"Authorization": f"Bearer {slow_token}", "Origin": product.url},
            max_queue=1,
        )
        with_slow = await _steady_chat(sender, reader, count, first_seq=count + 1)
        await asyncio.sleep(1)
        rss_after = product.web_rss_kib()
        await slow.close()
        # It comes back, as the browser does, and resumes from the last seq it saw (none).
        caught_up = ResilientClient(product, slug, slow_token, "slow")
        await caught_up.connect()
        await caught_up.wait_for_seq(2 * count, timeout=30)
        for client in (sender, reader, caught_up):
            await client.close()
        return {
            "baseline": baseline,
            "with_slow": with_slow,
            "rss": (rss_before, rss_after),
            "caught_up": caught_up,
        }

    result = run_async(scenario())
    base_median = statistics.median(result["baseline"])
    slow_median = statistics.median(result["with_slow"])
    rss_before, rss_after = result["rss"]
    print(
        f"\nslow client: reader latency median {base_median * 1000:.1f} ms without, {slow_median * 1000:.1f} ms"
        f" with (ratio {slow_median / base_median:.2f}); daphne RSS {rss_before} -> {rss_after} KiB"
    )
    # Generous bounds: two shared cores make latency noisy; a blocked reader would add seconds, not percent.
    assert slow_median < max(5 * base_median, base_median + 0.25)
    assert rss_after - rss_before < 64 * 1024, "Daphne grew by more than 64 MiB for one slow reader"
    caught_up = result["caught_up"]
    assert caught_up.seen == set(range(1, 2 * count + 1)) and caught_up.duplicates == []
