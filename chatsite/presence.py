"""Who has a socket open in a room, counted in Redis so every Daphne process sees the same room.

A hash per room maps username -> open sockets. A crashed Daphne leaves stale counts behind; they expire with
the hash a day after the room's last change, which is acceptable for a "who is here" hint.
"""

from __future__ import annotations

from django.conf import settings
from redis import asyncio as aioredis


def _redis() -> aioredis.Redis:
    # A client per call: presence changes only on connect and disconnect, and a shared client would be bound
    # to the event loop that created it.
    return aioredis.Redis.from_url(settings.REDIS_URL, decode_responses=True)


def _key(room_id: int) -> str:
    return f"bridge:presence:{room_id}"


async def arrive(room_id: int, username: str) -> list[str]:
    key = _key(room_id)
    async with _redis() as client, client.pipeline(transaction=True) as pipe:
        pipe.hincrby(key, username, 1)
        pipe.expire(key, 86400)
        pipe.hkeys(key)
        *_, names = await pipe.execute()
    return sorted(names)


async def leave(room_id: int, username: str) -> list[str]:
    key = _key(room_id)
    async with _redis() as client:
        if await client.hincrby(key, username, -1) <= 0:
            await client.hdel(key, username)
        return sorted(await client.hkeys(key))
