"""Fixed-window rate limits kept in Redis, so every Daphne process counts the same window.

The async path (websocket frames) talks to Redis directly with an atomic INCR: Django's async cache methods run
the sync client in the one thread Channels shares for all sync work, which queued every send behind the
database calls of every other socket (measured in bench/README.md).
"""

from __future__ import annotations

import asyncio
import time
import weakref

from django.conf import settings
from django.core.cache import cache
from redis import asyncio as aioredis

RATE_KEY_PREFIX = "bridge:rl:"

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = weakref.WeakKeyDictionary()


def _window_key(scope: str, identity: str, window_s: int) -> str:
    return f"{RATE_KEY_PREFIX}{scope}:{identity}:{int(time.time() // window_s)}"


def hit(scope: str, identity: str, *, limit: int, window_s: int = 60) -> bool:
    """Counts one hit; False when the identity is past `limit` hits in the current window (sync callers)."""
    key = _window_key(scope, identity, window_s)
    cache.add(key, 0, timeout=window_s + 1)
    try:
        count = cache.incr(key)  # Redis INCR behind Django's RedisCache: atomic
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window_s + 1)
        count = 1
    return count <= limit


def seconds_to_window_end(window_s: int = 60) -> int:
    return max(1, int(window_s - time.time() % window_s))


def _client() -> aioredis.Redis:
    # One client (and connection pool) per event loop: Daphne has one loop; tests make many.
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = _clients[loop] = aioredis.Redis.from_url(settings.REDIS_URL)
    return client


async def ahit(scope: str, identity: str, *, limit: int, window_s: int = 60) -> bool:
    """The async twin of `hit`: one round trip, INCR and EXPIRE in a transaction."""
    key = _window_key(scope, identity, window_s)
    async with _client().pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, window_s + 1)
        count, _ = await pipe.execute()
    return count <= limit
