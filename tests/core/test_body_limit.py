"""Request bodies are capped while they arrive, in front of Django (chatsite/bodylimit.py), through the real ASGI
application: a declared Content-Length past the cap is refused before any byte is read, an undeclared body as
soon as it passes the cap, and the checkpoint upload path has its own, larger cap."""

from __future__ import annotations

import json

import pytest
from asgiref.testing import ApplicationCommunicator

from chatsite.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


def _scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }


async def _post(path: str, chunks: list[bytes], declared: int | None) -> tuple[int, dict, int]:
    headers = [(b"content-type", b"application/json")]
    if declared is not None:
        headers.append((b"content-length", str(declared).encode()))
    communicator = ApplicationCommunicator(application, _scope(path, headers))
    for index, chunk in enumerate(chunks):
        await communicator.send_input({"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1})
    start = await communicator.receive_output(timeout=10)
    body = await communicator.receive_output(timeout=10)
    unread = 0
    while not communicator.input_queue.empty():
        communicator.input_queue.get_nowait()
        unread += 1
    await communicator.wait(timeout=5)
    return start["status"], json.loads(body["body"] or b"{}"), unread


async def test_a_declared_oversized_body_is_refused_before_it_is_read(settings):
    settings.BRIDGE_MAX_REQUEST_BYTES = 1000
    status, body, unread = await _post("/api/auth/signup", [b"x" * 600, b"x" * 600], declared=1200)
    assert status == 413 and body["error"]["code"] == "too_large"
    assert unread == 2  # neither chunk was taken from the client


async def test_an_undeclared_body_is_stopped_once_it_passes_the_cap(settings):
    settings.BRIDGE_MAX_REQUEST_BYTES = 1000
    status, body, unread = await _post("/api/auth/signup", [b"x" * 600, b"x" * 600, b"x" * 600], declared=None)
    assert status == 413 and "1000 bytes" in body["error"]["detail"]
    assert unread == 1  # the third chunk was never read


async def test_checkpoint_uploads_have_their_own_cap(settings):
    settings.BRIDGE_MAX_REQUEST_BYTES = 1000
    settings.BRIDGE_CHECKPOINT_MAX_UPLOAD_BYTES = 5000
    # Past the general cap but under the upload cap: reaches Django (401: no credentials), not refused for size.
    status, body, _ = await _post("/api/checkpoints", [b"x" * 3000], declared=3000)
    assert status == 401, body
    status, body, _ = await _post("/api/checkpoints", [b"x" * 3000, b"x" * 3000], declared=6000)
    assert status == 413


async def test_small_bodies_pass(settings):
    status, body, _ = await _post("/api/auth/token", [b'{"username": "nobody", "password": "x"}'], declared=None)
    assert status in (400, 401), body  # Django answered: the body got through
