"""GET /healthz: 200 when the database and the channel layer answer, 503 naming what is down (CONTRACT.md).

Beside that verdict it reports the readiness of the model pipeline, which does not decide the status code (chat
works without it; translations and emotions wait): whether the broker answers, the depth of each model queue, and
how many workers consume each one. What is not ready is listed under "degraded".
"""

from __future__ import annotations

import asyncio
import hmac
import time

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse

from chatsite import broker, metrics


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


MODEL_QUEUES = ("translation", "sentiment")
_WORKERS_TTL_S = 5.0
_workers_seen: tuple[float, dict[str, int]] | None = None


def _workers_by_queue() -> dict[str, int]:
    """How many live workers consume each model queue (a remote-control broadcast, remembered a few seconds
    so that frequent probes do not each wait for the replies)."""
    global _workers_seen
    now = time.monotonic()
    if _workers_seen is not None and now - _workers_seen[0] < _WORKERS_TTL_S:
        return _workers_seen[1]
    from chatsite.celery import app

    counts = dict.fromkeys(MODEL_QUEUES, 0)
    try:
        replies = app.control.inspect(timeout=settings.BRIDGE_HEALTH_WORKER_TIMEOUT_S).active_queues() or {}
    except Exception:
        replies = {}
    for queues in replies.values():
        for queue in {item.get("name") for item in queues or []}:
            if queue in counts:
                counts[queue] += 1
    _workers_seen = (now, counts)
    return counts


def _readiness() -> tuple[dict, list[str]]:
    depths = {queue: broker.queue_depth(queue) for queue in MODEL_QUEUES}
    broker_ok = all(depth is not None for depth in depths.values())
    workers = _workers_by_queue() if broker_ok else dict.fromkeys(MODEL_QUEUES, 0)
    degraded = ([] if broker_ok else ["broker"]) + [f"workers.{queue}" for queue, n in workers.items() if not n]
    return {"broker": broker_ok, "queues": depths, "workers": workers}, degraded


def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _database_ok(), "channel_layer": _channel_layer_ok()}
    down = [name for name, ok in checks.items() if not ok]
    readiness, degraded = _readiness()
    body = {"status": "ok" if not down else "down", "checks": checks, "readiness": readiness}
    if down:
        body["down"] = down
    if degraded:
        body["degraded"] = degraded
    return JsonResponse(body, status=200 if not down else 503)


def _may_scrape(request: HttpRequest) -> bool:
    """With BRIDGE_METRICS_TOKEN, a bearer token; without, only a direct request from this host (a request that
    came through the proxy carries X-Forwarded-For and is refused)."""
    token = settings.BRIDGE_METRICS_TOKEN
    if token:
        return hmac.compare_digest(request.headers.get("Authorization", ""), f"Bearer {token}")
    direct = "X-Forwarded-For" not in request.headers
    return direct and request.META.get("REMOTE_ADDR") in {"127.0.0.1", "::1"}


def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics: Prometheus exposition of this host's processes (chatsite/metrics.py)."""
    if not _may_scrape(request):
        return HttpResponse("metrics: forbidden\n", status=403, content_type="text/plain")
    body, content_type = metrics.exposition()
    return HttpResponse(body, content_type=content_type)
