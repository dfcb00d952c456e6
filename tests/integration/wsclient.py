"""A tiny websocket client for the live-product tests (the `websockets` library, asyncio)."""

from __future__ import annotations

import asyncio
import json
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


async def open_socket(product, slug: str, token: str, origin: str | None = None):
    return await websockets.connect(
        f"ws://127.0.0.1:{product.port}/ws/rooms/{slug}/",
        additional_headers={"Authorization": f"Bearer {token}", "Origin": origin or product.url},
        max_size=2**22,
    )


async def next_of(ws, event_type: str, timeout: float = 30) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            event = json.loads(await ws.recv())
            if event["type"] == event_type:
                return event
