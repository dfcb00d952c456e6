"""Upload -> ready -> activate -> the next message uses the new version (worker still running) -> rollback."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import requests

from tests.factories import tiny_sentiment_checkpoint, zip_directory
from tests.integration.wsclient import next_of, open_socket, run_async

pytestmark = pytest.mark.integration


def _upload(product, token: str, archive) -> dict:
    with archive.open("rb") as handle:
        response = requests.post(
            product.url + "/api/checkpoints",
            headers={"Authorization": f"Bearer {token}"},
            data={"kind": "sentiment"},
            files={"file": (archive.name, handle, "application/zip")},
            timeout=30,
        )
    assert response.status_code == 201, response.text
    return response.json()


def _wait_ready(product, token: str, checkpoint_id: int, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, body = product.api("GET", "/api/checkpoints", token=token)
        mine = next(c for c in body["checkpoints"] if c["id"] == checkpoint_id)
        if mine["status"] != "validating":
            return mine
        time.sleep(0.5)
    raise AssertionError("validation did not finish")


def test_activate_and_rollback_reach_the_running_worker(live_product, tmp_path):
    admin = live_product.admin_token()
    writer = live_product.signup(f"w{uuid.uuid4().hex[:6]}", "en")
    _, room = live_product.api("POST", "/api/rooms", {"name": "Rollout"}, writer)

    versions = []
    for seed in (1, 2):
        archive = zip_directory(tiny_sentiment_checkpoint(tmp_path / f"m{seed}", seed), tmp_path / f"m{seed}.zip")
        uploaded = _upload(live_product, admin, archive)
        assert uploaded["status"] == "validating"
        ready = _wait_ready(live_product, admin, uploaded["id"])
        assert ready["status"] == "ready", ready["reasons"]
        assert "macro_f1" in ready["metrics"]
        versions.append((ready["id"], ready["version"]))

    async def engine_of_next_message() -> str:
        ws = await open_socket(live_product, room["slug"], writer)
        await ws.send(json.dumps({"type": "message.send", "client_id": str(uuid.uuid4()), "text": "hello you"}))
        tagged = await next_of(ws, "message.sentiment", timeout=60)
        await ws.close()
        return tagged["engine"]

    (v1_id, v1), (v2_id, v2) = versions
    assert live_product.api("POST", f"/api/checkpoints/{v1_id}/activate", token=admin)[0] == 200
    assert run_async(engine_of_next_message()) == f"bridge-emotion@{v1}"
    status, body = live_product.api("POST", f"/api/checkpoints/{v2_id}/activate", {"force": True}, token=admin)
    assert status == 200, body
    assert run_async(engine_of_next_message()) == f"bridge-emotion@{v2}"
    assert live_product.api("POST", f"/api/checkpoints/{v2_id}/rollback", token=admin)[0] == 200
    assert run_async(engine_of_next_message()) == f"bridge-emotion@{v1}"
    # Rolling back the first upload returns to the built-in default model (and leaves the registry clean).
    assert live_product.api("POST", f"/api/checkpoints/{v1_id}/rollback", token=admin)[0] == 200
    assert run_async(engine_of_next_message()) == "bridge-emotion@default"


def test_malicious_upload_is_refused_over_http(live_product, tmp_path):
    import pickle
    import zipfile

    admin = live_product.admin_token()
    sentinel = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(sentinel), "w"))

    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("config.json", json.dumps({"architectures": ["BertForSequenceClassification"]}))
        bundle.writestr("model.pt", pickle.dumps(Exploit()))
    with archive.open("rb") as handle:
        response = requests.post(
            live_product.url + "/api/checkpoints",
            headers={"Authorization": f"Bearer {admin}"},
            data={"kind": "sentiment"},
            files={"file": ("evil.zip", handle)},
            timeout=30,
        )
    assert response.status_code == 400 and response.json()["error"]["code"] == "pickle_weights"
    time.sleep(1)
    assert not sentinel.exists()
