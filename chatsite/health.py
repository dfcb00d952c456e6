"""GET /healthz: 200 when the database and the channel layer answer, 503 naming what is down."""

from __future__ import annotations

import asyncio

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection
from django.http import HttpRequest, JsonResponse


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        return False


async def _layer_roundtrip() -> bool:
    layer = get_channel_layer()
    channel = await layer.new_channel("healthz.")
    await layer.send(channel, {"type": "healthz.ping"})
    message = await asyncio.wait_for(layer.receive(channel), timeout=5)
    return message.get("type") == "healthz.ping"


def _channel_layer_ok() -> bool:
    try:
        return async_to_sync(_layer_roundtrip)()
    except Exception:
        return False


def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _database_ok(), "channel_layer": _channel_layer_ok()}
    down = [name for name, ok in checks.items() if not ok]
    body = {"status": "ok" if not down else "down", "checks": checks}
    if down:
        body["down"] = down
    return JsonResponse(body, status=200 if not down else 503)
