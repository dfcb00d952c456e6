"""A cap on HTTP request bodies, enforced as they reach the application, before Django reads them.

Django's ASGI handler spools every request body to a temporary file before any view runs, with no size limit, so
a cap checked in a view comes after the disk has taken it all. This ASGI middleware refuses a declared
Content-Length past the cap at once (413, nothing read) and stops an undeclared or lying body as soon as it
passes the cap. Checkpoint uploads get their own, larger cap.

Daphne itself (twisted) receives a whole request body, to a temporary file, before it hands it to the
application, and has no option to cap it: in front of Daphne the first cap is the proxy's (deploy/nginx.conf sets
the same two limits). This middleware still keeps Django from spooling a second copy, and holds on its own under
ASGI servers that stream bodies.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

# Paths that take model archives: the API and the Django admin's checkpoint form.
UPLOAD_PREFIXES = ("/api/checkpoints", "/admin/chatsite/checkpoint/")


class BodyTooLarge(Exception):
    pass


def cap_for(path: str) -> int:
    if path.startswith(UPLOAD_PREFIXES):
        return settings.BRIDGE_CHECKPOINT_MAX_UPLOAD_BYTES
    return settings.BRIDGE_MAX_REQUEST_BYTES


class RequestBodyLimit:
    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = cap_for(scope["path"])
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            await _refuse(send, cap)
            return
        received = 0
        started = False

        async def counted_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise BodyTooLarge
            return message

        async def tracked_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if not started:  # Django reads the whole body before it answers, so this is the usual case
                await _refuse(send, cap)


async def _refuse(send: Send, cap: int) -> None:
    body = json.dumps(
        {"error": {"code": "too_large", "detail": f"The request body is larger than {cap} bytes."}}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
