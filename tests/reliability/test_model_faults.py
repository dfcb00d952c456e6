"""Model and engine faults with real processes: a corrupt emotion checkpoint, a broken or missing Apertium."""

from __future__ import annotations

import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.wsclient import run_async
from tests.reliability.conftest import ResilientClient

pytestmark = pytest.mark.integration


def _errors(product, kind: str) -> float:
    """bridge_errors_total{kind} as the product's /metrics reports it (web and workers summed)."""
    with urllib.request.urlopen(product.url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "bridge_errors_total" and sample.labels.get("kind") == kind
    )


def _wait(predicate, timeout: float, step: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def test_corrupt_emotion_model_leaves_chat_and_translation_working(make_fault_product, tmp_path):
    corrupt = tmp_path / "corrupt-emotion"
    corrupt.mkdir()
    (corrupt / "config.json").write_text('{"model_type": "bert", "num_labels": 7}')
    (corrupt / "model.safetensors").write_bytes(b"\x00garbage, not a safetensors header" * 40)
    product = make_fault_product(sentiment_dir=corrupt)
    slug, (en_token, es_token) = product.room_with(("en", "en"), ("es", "es"))

    async def chat() -> list[dict]:
        en = ResilientClient(product, slug, en_token, "en")
        es = ResilientClient(product, slug, es_token, "es")
        await en.connect()
        await es.connect()
        for text in ("The house is very big.", "My dog is happy today."):
            await en.send(text)
        await es.wait_for_seq(2)
        await en.close()
        await es.close()
        return es.events

    run_async(chat())
    done = _wait(
        lambda: all(m["translations"].get("es", {}).get("status") == "ok" for m in product.history(slug, es_token)),
        timeout=60,
    )
    assert done, product.history(slug, es_token)
    # The worker logged why, and kept serving: every analyse task was received and retried, none crashed it.
    log = _wait(lambda: "failed to load" in product.log("worker-sentiment") and product.log("worker-sentiment"), 30)
    assert log and "failed to load" in log
    assert product.processes["worker-sentiment"].poll() is None
    # Nothing fake: no emotion stored or sent while the model cannot load.
    assert all(m["sentiment"] is None for m in product.history(slug, en_token))
    # And an alert-worthy metric moved.
    assert _errors(product, "model_load_failed") >= 1


def test_apertium_crashing_ends_failed_with_a_reason(make_fault_product, tmp_path):
    broken_bin = tmp_path / "broken-bin"
    broken_bin.mkdir()
    fake = broken_bin / "lt-proc"
    # Apertium's first stage (lttoolbox's lt-proc) is found but dies: the engine error path (the running stages
    # are restarted once, then retries, then `failed` with the stage's own words as the reason).
    fake.write_text("#!/bin/sh\necho 'simulated apertium crash' >&2\nexit 3\n")
    fake.chmod(0o755)
    import os

    path = f"{broken_bin}:{os.environ['PATH']}"
    product = make_fault_product(extra_env={"PATH": path})
    slug, (en_token, es_token) = product.room_with(("en", "en"), ("es", "es"))

    async def post() -> None:
        en = ResilientClient(product, slug, en_token, "en")
        await en.connect()
        await en.send("The weather is nice today.")
        await en.close()

    run_async(post())
    # Retries with 1+2+4+8 s backoff, then `failed`.
    translation = _wait(
        lambda: (
            (product.history(slug, es_token)[0]["translations"].get("es") or {}).get("status")
            and product.history(slug, es_token)[0]["translations"]["es"]
        ),
        timeout=60,
    )
    assert translation, product.log("worker-translation")[-2000:]
    assert translation["status"] == "failed", translation
    assert translation["text"] is None and "simulated apertium crash" in translation["reason"], translation
    assert product.processes["worker-translation"].poll() is None
    assert _errors(product, "translation_failed") >= 1


def test_no_apertium_on_path_ends_untranslated_with_a_reason(make_fault_product, tmp_path):
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir()
    # Only the worker loses apertium: the web process keeps the normal PATH.
    product = make_fault_product()
    product.kill_worker("translation")
    product.env["PATH"] = str(empty_bin)
    product.start_worker("translation")
    slug, (en_token, es_token) = product.room_with(("en", "en"), ("es", "es"))

    async def post() -> None:
        en = ResilientClient(product, slug, en_token, "en")
        await en.connect()
        await en.send("The weather is nice today.")
        await en.close()

    run_async(post())
    translation = _wait(lambda: product.history(slug, es_token)[0]["translations"].get("es"), timeout=60)
    assert translation, product.log("worker-translation")[-2000:]
    assert translation["status"] == "untranslated" and translation["text"] is None, translation
    assert "no route" in translation["reason"], translation
    assert product.processes["worker-translation"].poll() is None
