"""Prometheus metrics, with the official client (prometheus_client).

Every process (Daphne, each Celery worker) records into the same metric objects. With PROMETHEUS_MULTIPROC_DIR set
(bin/run sets it) they write to files in that directory and `GET /metrics` on any web process of the host sums
them: web and workers in one scrape. Without it (unit tests, a bare `manage.py`) each process keeps its own.
Queue depths are read from the broker at scrape time. No metric carries message text or a user name.
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client import generate_latest as _generate_latest
from prometheus_client.core import GaugeMetricFamily

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
MODEL_QUEUES = ("translation", "sentiment", "maintenance")

WEBSOCKETS = Gauge("bridge_websocket_connections", "Open chat websockets", multiprocess_mode="livesum")
MESSAGES = Counter("bridge_messages_total", "Messages stored (each client_id once)")
SEND_SECONDS = Histogram(
    "bridge_send_seconds",
    "From a message.send frame to its ack: validate, store, commit and hand to the room's group",
    buckets=_LATENCY_BUCKETS,
)
TRANSLATION_SECONDS = Histogram(
    "bridge_translation_seconds",
    "From a message's creation to its stored translation, by outcome",
    ["status"],
    buckets=_LATENCY_BUCKETS,
)
EMOTION_SECONDS = Histogram(
    "bridge_emotion_seconds", "From a message's creation to its stored emotion", buckets=_LATENCY_BUCKETS
)
BATCH_SIZE = Histogram("bridge_batch_size", "Texts per model call", ["kind"], buckets=(1, 2, 4, 8, 16, 32, 64, 128))
MODEL_IN_USE = Gauge(
    "bridge_model_in_use",
    "1 for each model version a worker process serves",
    ["kind", "version"],
    multiprocess_mode="liveall",
)
FLAGS = Counter("bridge_flags_total", "Messages newly flagged for moderators")
ERRORS = Counter(
    "bridge_errors_total",
    "Failures worth an alert: translation_failed, emotion_gave_up, followups_lost, model_load_failed, broadcast_failed",
    ["kind"],
)
SWEEP_RESENT = Counter("bridge_sweep_resent_total", "Follow-up tasks the sweeper re-sent", ["kind"])


class _QueueDepths:
    """bridge_queue_depth{queue}: read from the broker when scraped (-1 when it does not answer)."""

    def collect(self):
        from chatsite import broker

        family = GaugeMetricFamily("bridge_queue_depth", "Tasks waiting in a Celery queue", labels=["queue"])
        for queue in MODEL_QUEUES:
            depth = broker.queue_depth(queue)
            family.add_metric([queue], -1 if depth is None else depth)
        yield family


_queue_depths = _QueueDepths()
_queue_depths_in_default_registry = False


def exposition() -> tuple[bytes, str]:
    """The text a Prometheus scrape gets, and its content type."""
    global _queue_depths_in_default_registry
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # every process of this host, from their files
        registry.register(_queue_depths)
    else:
        registry = REGISTRY  # this process only
        if not _queue_depths_in_default_registry:
            registry.register(_queue_depths)
            _queue_depths_in_default_registry = True
    return _generate_latest(registry), CONTENT_TYPE_LATEST


def serve_model(kind: str, version: str, previous: str | None = None) -> None:
    """Records which model version this process now serves (and that it stopped serving `previous`)."""
    if previous and previous != version:
        MODEL_IN_USE.labels(kind=kind, version=previous).set(0)
    MODEL_IN_USE.labels(kind=kind, version=version).set(1)
