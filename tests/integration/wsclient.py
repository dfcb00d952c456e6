"""A tiny websocket client for the live-product tests (the `websockets` library, asyncio)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import websockets

T = TypeVar("T")


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """asyncio.run in a thread of its own: Playwright's sync API (browser tests in the same session) keeps an
    event loop marked as running in the main thread, where asyncio.run refuses to start."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def open_socket(product, slug: str, token: str, origin: str | None = None, port: int | None = None):
    """A room socket on the product's web process, or on another one at `port` (scale-out tests)."""
    return await websockets.connect(
        f"ws://127.0.0.1:{port or product.port}/ws/rooms/{slug}/",
        additional_headers={"Authorization": f"Bearer {token}", "Origin": origin or product.url},
        max_size=2**22,
    )


async def next_of(ws, event_type: str, timeout: float = 30) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            event = json.loads(await ws.recv())
            if event["type"] == event_type:
                return event


def route_of_next_message(product, slug: str, writer: str, reader: str, text: str) -> str:
    """Sends `text` as `writer` and returns the route (`engine`) of the translation `reader` receives."""

    async def scenario() -> str:
        sender = await open_socket(product, slug, writer)
        receiver = await open_socket(product, slug, reader)
        await sender.send(json.dumps({"type": "message.send", "client_id": str(uuid.uuid4()), "text": text}))
        translated = await next_of(receiver, "message.translated", timeout=90)
        await sender.close()
        await receiver.close()
        return translated["engine"]

    return run_async(scenario())
