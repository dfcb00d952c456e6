"""Fixed-window rate limits kept in the shared cache (Redis), so every Daphne process counts the same window."""

from __future__ import annotations

import time

from django.core.cache import cache


def _window_key(scope: str, identity: str, window_s: int) -> str:
    return f"rl:{scope}:{identity}:{int(time.time() // window_s)}"


def hit(scope: str, identity: str, *, limit: int, window_s: int = 60) -> bool:
    """Counts one hit; False when the identity is past `limit` hits in the current window."""
    key = _window_key(scope, identity, window_s)
    cache.add(key, 0, timeout=window_s + 1)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window_s + 1)
        count = 1
    return count <= limit


def seconds_to_window_end(window_s: int = 60) -> int:
    return max(1, int(window_s - time.time() % window_s))


async def ahit(scope: str, identity: str, *, limit: int, window_s: int = 60) -> bool:
    key = _window_key(scope, identity, window_s)
    await cache.aadd(key, 0, timeout=window_s + 1)
    try:
        count = await cache.aincr(key)
    except ValueError:
        await cache.aadd(key, 1, timeout=window_s + 1)
        count = 1
    return count <= limit
