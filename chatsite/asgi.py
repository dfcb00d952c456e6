"""ASGI entry point: HTTP through Django, websockets through the origin check, auth, then the URL router."""

import gc
import os
import threading

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
# Django must be set up before consumers (and their models) are imported.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from chatsite.auth import TokenAuthMiddleware  # noqa: E402
from chatsite.bodylimit import RequestBodyLimit  # noqa: E402
from chatsite.routing import websocket_urlpatterns  # noqa: E402
from translation.services import warm_up_language_detection  # noqa: E402


def _warm_up() -> None:
    # Language detection runs before a message is stored: build its models now, off the path of the first message;
    # import what the first message's follow-ups import, for the same reason.
    warm_up_language_detection()
    import sentiment.tasks  # noqa: F401
    import translation.tasks  # noqa: F401

    # Then move everything start-up made out of the collector's sight: a full collection walked those ~100k
    # objects every time, and its pauses stopped the event loop (the delivery benchmark's p99, bench/README.md).
    gc.collect()
    gc.freeze()


threading.Thread(target=_warm_up, name="bridge-warm-up", daemon=True).start()

application = ProtocolTypeRouter(
    {
        "http": RequestBodyLimit(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(TokenAuthMiddleware(URLRouter(websocket_urlpatterns)))
        ),
    }
)
