"""The checkpoint registry through its HTTP API: who may upload, what is refused before load, the gate, rollback.

Validation itself runs on a worker; here the task's service is called directly after the upload commits (the
end-to-end path with a real worker is in tests/integration/test_checkpoint_rollout.py).
"""

from __future__ import annotations

import io
import pickle
import zipfile

import pytest
from django.core.cache import cache
from django.test import Client

from chatsite.checkpoints import services
from chatsite.models import Checkpoint, CheckpointEvent
from tests.factories import tiny_sentiment_checkpoint, zip_directory

pytestmark = pytest.mark.django_db


class Sentinel:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture
def admin_client(make_db_user, settings, tmp_path):
    settings.BRIDGE_MODEL_ROOT = tmp_path / "models"
    cache.clear()  # upload rate-limit windows are keyed by user id, and ids repeat across tests
    admin = make_db_user("root", is_superuser=True, is_staff=True)
    client = Client()
    client.force_login(admin)
    return client


def upload(client: Client, data: bytes, kind: str = "sentiment", name: str = "model.zip", languages: str = ""):
    payload = {"kind": kind, "file": io.BytesIO(data)}
    payload["file"].name = name
    if languages:
        payload["languages"] = languages
    return client.post("/api/checkpoints", payload)


def test_non_admins_are_refused(make_db_user):
    client = Client()
    client.force_login(make_db_user("mallory"))
    assert client.post("/api/checkpoints", {"kind": "sentiment"}).status_code == 403
    assert client.get("/api/checkpoints").status_code == 403
    assert Client().get("/api/checkpoints").status_code == 401


def test_pickle_weights_are_refused_before_anything_loads(admin_client, tmp_path):
    sentinel = tmp_path / "pwned"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("config.json", '{"architectures": ["BertForSequenceClassification"]}')
        bundle.writestr("pytorch_model.bin", pickle.dumps(Sentinel(str(sentinel))))
    response = upload(admin_client, buffer.getvalue())
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "pickle_weights"
    assert not sentinel.exists()
    checkpoint = Checkpoint.objects.get()
    assert checkpoint.status == "rejected" and checkpoint.reasons[0]["code"] == "pickle_weights"
    assert list(CheckpointEvent.objects.values_list("action", flat=True)) == ["upload", "rejected"]


@pytest.mark.parametrize(
    ("data", "code"),
    [(b"", "empty"), (b"\x00garbage" * 50, "not_an_archive")],
)
def test_junk_is_refused_with_a_reason(admin_client, data, code):
    response = upload(admin_client, data)
    assert response.status_code == 400 and response.json()["error"]["code"] == code


def test_uploads_are_rate_limited_per_admin(admin_client, settings):
    settings.BRIDGE_UPLOAD_RATE_PER_MINUTE = 2
    assert upload(admin_client, b"").status_code == 400  # refused for its content, but counted
    assert upload(admin_client, b"").status_code == 400
    response = upload(admin_client, b"")
    assert response.status_code == 429 and response.json()["error"]["code"] == "rate_limited"
    assert int(response["Retry-After"]) >= 1


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_delivery_waits_for_the_validation_in_progress(admin_client, tmp_path):
    """The broker re-delivers a task that outlasts its visibility timeout: the second run must not extract over
    the files the first is loading. It is told to wait (the task retries) and, once the first is done, finds the
    checkpoint validated and leaves it alone."""
    uploaded = upload(
        admin_client, zip_directory(tiny_sentiment_checkpoint(tmp_path / "a", 1), tmp_path / "a.zip").read_bytes()
    )
    checkpoint_id = uploaded.json()["id"]
    lease = f"checkpoints:validating:{checkpoint_id}"
    cache.add(lease, 1, timeout=60)  # a first run holds it
    with pytest.raises(services.ValidationBusy):
        services.validate(checkpoint_id=checkpoint_id)
    assert Checkpoint.objects.get(pk=checkpoint_id).status == "validating"
    assert not (services.storage_dir(checkpoint_id) / "model").exists()  # nothing extracted by the duplicate
    cache.delete(lease)  # the first run ends (or its lease expires)
    assert services.validate(checkpoint_id=checkpoint_id).status == "ready"
    assert services.validate(checkpoint_id=checkpoint_id).status == "ready"  # a late duplicate: no-op
    assert cache.get(lease) is None


def test_translation_needs_language_pairs(admin_client, tmp_path):
    archive = zip_directory(tiny_sentiment_checkpoint(tmp_path / "m"), tmp_path / "m.zip")
    response = upload(admin_client, archive.read_bytes(), kind="translation")
    assert response.status_code == 400 and response.json()["error"]["code"] == "languages_required"


@pytest.mark.django_db(transaction=True)
def test_upload_validate_activate_gate_and_rollback(admin_client, tmp_path):
    first = upload(
        admin_client, zip_directory(tiny_sentiment_checkpoint(tmp_path / "a", 1), tmp_path / "a.zip").read_bytes()
    )
    assert first.status_code == 201 and first.json()["status"] == "validating"
    v1 = services.validate(checkpoint_id=first.json()["id"])
    assert v1.status == "ready", v1.reasons
    assert "macro_f1" in v1.metrics and "latency" in v1.metrics
    assert admin_client.post(f"/api/checkpoints/{v1.id}/activate").status_code == 200
    assert services.current_stamp("sentiment") >= 1

    second = upload(
        admin_client, zip_directory(tiny_sentiment_checkpoint(tmp_path / "b", 2), tmp_path / "b.zip").read_bytes()
    )
    v2 = services.validate(checkpoint_id=second.json()["id"])
    # Make the candidate clearly worse than the active one: the gate refuses unless forced.
    Checkpoint.objects.filter(pk=v2.id).update(metrics={**v2.metrics, "macro_f1": v1.metrics["macro_f1"] - 0.5})
    refused = admin_client.post(f"/api/checkpoints/{v2.id}/activate")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "worse_than_active"
    forced = admin_client.post(
        f"/api/checkpoints/{v2.id}/activate", data='{"force": true}', content_type="application/json"
    )
    assert forced.status_code == 200
    assert Checkpoint.objects.get(pk=v1.id).status == "retired"

    rolled = admin_client.post(f"/api/checkpoints/{v2.id}/rollback")
    assert rolled.status_code == 200 and rolled.json()["version"] == v1.version
    statuses = {c.version: c.status for c in Checkpoint.objects.all()}
    assert statuses == {v1.version: "active", v2.version: "retired"}
    listing = admin_client.get("/api/checkpoints").json()["checkpoints"]
    actions = [e["action"] for c in listing if c["id"] == v2.id for e in c["events"]]
    assert actions == ["upload", "validated", "activate", "rollback"]


@pytest.mark.django_db(transaction=True)
def test_shadow_candidate_runs_beside_the_active_version_unseen(admin_client, tmp_path, make_db_user, make_room):
    from chatsite import services as chat_services
    from sentiment import services as sentiment_services

    ids = []
    for seed in (1, 2):
        data = zip_directory(tiny_sentiment_checkpoint(tmp_path / f"s{seed}", seed), tmp_path / f"s{seed}.zip")
        ids.append(services.validate(checkpoint_id=upload(admin_client, data.read_bytes()).json()["id"]).id)
    active_id, candidate_id = ids
    assert admin_client.post(f"/api/checkpoints/{active_id}/activate").status_code == 200
    on = admin_client.post(
        f"/api/checkpoints/{candidate_id}/shadow", data='{"enabled": true}', content_type="application/json"
    )
    assert on.status_code == 200 and on.json()["shadow"]["enabled"] is True
    refused = admin_client.post(
        f"/api/checkpoints/{active_id}/shadow", data='{"enabled": true}', content_type="application/json"
    )
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "not_ready"

    author = make_db_user("writer")
    room = make_room(author)
    message, _ = chat_services.post_message(room=room, author=author, text="hello you", client_id=None, max_chars=4000)
    stored = sentiment_services.analyse_message(message_id=message.id)
    active_version = Checkpoint.objects.get(pk=active_id).version
    assert stored.engine == f"bridge-emotion@{active_version}", "readers see the active version only"

    listing = {c["id"]: c for c in admin_client.get("/api/checkpoints").json()["checkpoints"]}
    shadow = listing[candidate_id]["shadow"]
    assert shadow["messages"] == 1 and 0.0 <= shadow["agreement"] <= 1.0
    assert shadow["active_ms"] > 0 and shadow["candidate_ms"] > 0
    off = admin_client.post(
        f"/api/checkpoints/{candidate_id}/shadow", data='{"enabled": false}', content_type="application/json"
    )
    assert off.status_code == 200 and off.json()["shadow"]["enabled"] is False
    events = [e["action"] for e in off.json()["events"]]
    assert events[-2:] == ["shadow_on", "shadow_off"]
