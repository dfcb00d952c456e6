"""The fine-tuning pipeline's output is exactly what the registry takes: `manage.py finetune translation` (a short
run from a tiny model), its directory zipped, uploaded over HTTP, validated by the worker on the held-out pairs,
run in shadow mode beside Apertium (recorded, never shown), activated, serving the next message, and rolled back
to Apertium."""

from __future__ import annotations

import json
import time
import zipfile

import pytest
import requests

from tests.conftest import emotion_model_dir
from tests.factories import finetune_tiny_translation, zip_directory
from tests.integration.test_checkpoint_rollout import _wait_ready
from tests.integration.wsclient import route_of_next_message as route_of_next

pytestmark = pytest.mark.integration


def test_a_finetuned_translation_checkpoint_goes_live_and_back(live_product, tmp_path):
    out = finetune_tiny_translation(live_product, tmp_path / "en-es")
    metrics = json.loads((out / "metrics.json").read_text())
    # sacreBLEU figures for the base and the fine-tuned model, and the gain between them (issue 5).
    assert {"bleu", "chrf"} <= set(metrics["test"]["finetuned"]) and {"bleu", "chrf"} <= set(metrics["test"]["base"])
    assert set(metrics["gain"]) == {"bleu", "chrf"}
    assert (out / "model.safetensors").exists() and (out / "README.md").exists()
    assert not list(out.glob("*.bin"))

    admin = live_product.admin_token()
    archive = zip_directory(out, tmp_path / "en-es.zip")
    with archive.open("rb") as handle:
        response = requests.post(
            live_product.url + "/api/checkpoints",
            headers={"Authorization": f"Bearer {admin}"},
            data={"kind": "translation", "languages": "en-es"},
            files={"file": (archive.name, handle, "application/zip")},
            timeout=60,
        )
    assert response.status_code == 201, response.text
    ready = _wait_ready(live_product, admin, response.json()["id"], timeout=180)
    assert ready["status"] == "ready", ready["reasons"]

    slug, (writer, reader) = live_product.room_with(("w", "en"), ("r", "es"), name="Finetuned")

    def route_of_next_message() -> str:
        return route_of_next(live_product, slug, writer, reader, "I like the cat.")

    # Shadow mode first: the candidate translates live messages beside Apertium, readers still get Apertium.
    status, body = live_product.api("POST", f"/api/checkpoints/{ready['id']}/shadow", {"enabled": True}, admin)
    assert status == 200, body
    assert route_of_next_message().startswith("apertium-en-es@")
    deadline = time.monotonic() + 30
    while True:
        _, listing = live_product.api("GET", "/api/checkpoints", token=admin)
        shadow = next(c for c in listing["checkpoints"] if c["id"] == ready["id"])["shadow"]
        if shadow and shadow["messages"] >= 1:
            break
        assert time.monotonic() < deadline, shadow
        time.sleep(0.5)
    assert 0 <= shadow["agreement"] <= 1 and shadow["candidate_ms"] > 0 and shadow["active_ms"] > 0
    assert live_product.api("POST", f"/api/checkpoints/{ready['id']}/shadow", {"enabled": False}, admin)[0] == 200

    status, body = live_product.api("POST", f"/api/checkpoints/{ready['id']}/activate", token=admin)
    try:
        assert status == 200, body
        assert route_of_next_message() == f"bridge-mt@{ready['version']}"
    finally:
        # The live product is shared by the session: Apertium must serve en->es again for the other tests.
        assert live_product.api("POST", f"/api/checkpoints/{ready['id']}/rollback", token=admin)[0] == 200
    assert route_of_next_message().startswith("apertium-en-es@")


def test_the_default_emotion_model_built_by_the_pipeline_uploads_and_validates(live_product, tmp_path):
    """`manage.py build_models` runs `finetune sentiment`; its output directory, zipped, is what the registry takes
    (466 MB of safetensors: stored, not deflated, to keep the test quick)."""
    model_dir = emotion_model_dir()
    archive = zip_directory(model_dir, tmp_path / "emotion.zip", compression=zipfile.ZIP_STORED)
    admin = live_product.admin_token()
    with archive.open("rb") as handle:
        response = requests.post(
            live_product.url + "/api/checkpoints",
            headers={"Authorization": f"Bearer {admin}"},
            data={"kind": "sentiment"},
            files={"file": (archive.name, handle, "application/zip")},
            timeout=300,
        )
    assert response.status_code == 201, response.text
    ready = _wait_ready(live_product, admin, response.json()["id"], timeout=300)
    assert ready["status"] == "ready", ready["reasons"]
    built = json.loads((model_dir / "metrics.json").read_text())
    # The worker's held-out evaluation of the upload agrees with the pipeline's own figure for the same model.
    assert abs(ready["metrics"]["macro_f1"] - built["test"]["macro_f1"]) < 0.02, (ready["metrics"], built["test"])
