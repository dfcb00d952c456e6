"""Flower, Celery's monitor, as the Procfile runs it, sees the live product's workers and their queues."""

from __future__ import annotations

import json
import sys
import time
import urllib.request

import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.integration


def test_flower_lists_both_model_workers(live_product):
    port = free_port()
    live_product.env["FLOWER_UNAUTHENTICATED_API"] = "true"  # its JSON API; the UI is for a person on the host
    process = live_product._spawn(
        "flower",
        [sys.executable, "-m", "celery", "-A", "chatsite", "flower", "--address=127.0.0.1", f"--port={port}"],
    )
    try:
        deadline = time.monotonic() + 60
        queues: dict[str, set[str]] = {}
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/workers?refresh=1", timeout=10) as response:
                    workers = json.loads(response.read())
                queues = {
                    name: {queue["name"] for queue in info.get("active_queues") or []} for name, info in workers.items()
                }
                if any("translation" in q for q in queues.values()) and any("sentiment" in q for q in queues.values()):
                    break
            except OSError:
                pass
            time.sleep(1)
        assert any({"translation", "maintenance"} <= q for q in queues.values()), queues
        assert any({"sentiment", "maintenance"} <= q for q in queues.values()), queues
    finally:
        process.terminate()
        process.wait(timeout=10)
        live_product.processes.pop("flower", None)
        live_product.env.pop("FLOWER_UNAUTHENTICATED_API", None)
