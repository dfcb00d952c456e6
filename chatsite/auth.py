"""Bearer-token authentication for the HTTP API and the websocket (browsers use the session cookie instead)."""

from __future__ import annotations

from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from django.utils import timezone

from chatsite.models import ApiToken, User


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def user_for_token(raw: str) -> User | None:
    token = ApiToken.objects.select_related("user").filter(digest=ApiToken.digest_of(raw)).first()
    if token is None or not token.user.is_active:
        return None
    # Touch at most once a minute: a write per request would serialise every API call on one row.
    now = timezone.now()
    if token.last_used is None or (now - token.last_used).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used=now)
    return token.user


def user_for_request(request: HttpRequest) -> tuple[User | None, bool]:
    """(user, via_token). A bearer header wins over the session; a bad bearer token is anonymous."""
    raw = bearer_token(request.headers.get("Authorization"))
    if raw is not None:
        return user_for_token(raw), True
    user = request.user
    return (user if user.is_authenticated else None), False


class TokenAuthMiddleware:
    """ASGI middleware: when the handshake carries `Authorization: Bearer`, it decides the user.

    Placed inside AuthMiddlewareStack so the session user is the fallback for browsers.
    """

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers") or [])
        raw = bearer_token(headers.get(b"authorization", b"").decode("latin-1"))
        if raw is not None:
            user = await database_sync_to_async(user_for_token)(raw)
            scope = dict(scope, user=user or AnonymousUser())
        return await self.inner(scope, receive, send)
