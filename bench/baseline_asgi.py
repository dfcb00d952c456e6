"""The delivery benchmark's baseline: the least a Channels chat can do, under the product's channel layer.

Each `message.send` frame is group-sent to the room group as a `message.new` event and every consumer forwards
group events to its client. No database, no auth, no ack, no language detection, no follow-up tasks: whatever
the product costs on top of this is the product's own work. Run it as the product is run:

    REDIS_URL=redis://127.0.0.1:6379/15 daphne -p 8001 bench.baseline_asgi:application

The channel layer settings are the product's own (chatsite.settings.CHANNEL_LAYERS, read from the same
environment), so both sides of the comparison use the same Redis layer, capacity and expiry.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

import django
from django.conf import settings

if not settings.configured:
    # Only the layer configuration is taken from the product: importing the settings module runs no Django code.
    product_settings = importlib.import_module("chatsite.settings")
    settings.configure(
        DEBUG=False,
        INSTALLED_APPS=["channels"],
        CHANNEL_LAYERS=product_settings.CHANNEL_LAYERS,
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    )
    django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

urlpatterns: list = []  # ROOT_URLCONF must name a module with urlpatterns; HTTP is answered below, not by Django


class BaselineRoomConsumer(AsyncWebsocketConsumer):
    """Joins the room group; forwards every frame to the group and every group event to the client."""

    group: str = ""

    async def connect(self) -> None:
        self.group = f"baseline.{self.scope['url_route']['kwargs']['slug']}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        frame = json.loads(text_data or "{}")
        if frame.get("type") != "message.send":
            return
        event = {
            "type": "message.new",
            "message": {"seq": 0, "author": "", "text": frame.get("text"), "client_id": frame.get("client_id")},
        }
        await self.channel_layer.group_send(self.group, {"type": "chat.event", "event": event})

    async def chat_event(self, payload: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(payload["event"], ensure_ascii=False))


async def healthz(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Any HTTP request: 200, so the bench can wait for the process to listen the way it waits for the product."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"status": "ok"}'})


application = ProtocolTypeRouter(
    {
        "http": healthz,
        "websocket": URLRouter([path("ws/rooms/<slug:slug>/", BaselineRoomConsumer.as_asgi())]),
    }
)
