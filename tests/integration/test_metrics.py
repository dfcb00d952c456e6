"""GET /metrics on the live product: one scrape of the web process shows the web's and the workers' figures
(prometheus_client's multiprocess mode, as under bin/run)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.wsclient import next_of, open_socket, run_async

pytestmark = pytest.mark.integration


def _scrape(product, headers: dict[str, str] | None = None) -> dict[tuple[str, tuple], float]:
    request = urllib.request.Request(product.url + "/metrics", headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples, name: str, **labels) -> float:
    wanted = set(labels.items())
    return sum(
        value for (sample, sample_labels), value in samples.items() if sample == name and wanted <= set(sample_labels)
    )


def test_one_scrape_shows_web_and_worker_figures(live_product):
    slug, (en_token, es_token) = live_product.room_with(("en", "en"), ("es", "es"), name="Metrics")
    before = _scrape(live_product)

    async def scenario() -> dict:
        en = await open_socket(live_product, slug, en_token)
        es = await open_socket(live_product, slug, es_token)
        await en.send(json.dumps({"type": "message.send", "client_id": str(uuid.uuid4()), "text": "The cat is black."}))
        await next_of(en, "message.ack")
        await next_of(es, "message.translated", timeout=60)
        await next_of(en, "message.sentiment", timeout=60)
        during = _scrape(live_product)
        await en.close()
        await es.close()
        return during

    during = run_async(scenario())
    assert _value(during, "bridge_websocket_connections") >= 2
    assert _value(during, "bridge_messages_total") == _value(before, "bridge_messages_total") + 1
    assert _value(during, "bridge_send_seconds_count") >= 1
    # Written by the worker processes, read through the web process:
    assert _value(during, "bridge_translation_seconds_count", status="ok") >= 1
    assert _value(during, "bridge_emotion_seconds_count") >= 1
    assert _value(during, "bridge_batch_size_count", kind="translation") >= 1
    assert _value(during, "bridge_model_in_use", kind="sentiment") >= 1
    assert _value(during, "bridge_model_in_use", kind="translation") >= 1
    assert ("bridge_queue_depth", (("queue", "translation"),)) in during
    deadline = time.monotonic() + 10
    while _value(_scrape(live_product), "bridge_websocket_connections") > _value(
        before, "bridge_websocket_connections"
    ):
        assert time.monotonic() < deadline, "closed sockets still counted"
        time.sleep(0.2)


def test_metrics_are_refused_through_the_proxy(live_product):
    with pytest.raises(urllib.error.HTTPError) as refused:
        _scrape(live_product, {"X-Forwarded-For": "203.0.113.9"})
    assert refused.value.code == 403
