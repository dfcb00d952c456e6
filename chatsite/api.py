"""The JSON HTTP API of CONTRACT.md. Views are thin: parse, authorise, call a service or selector, answer."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.http import HttpRequest, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from chatsite import ratelimit, selectors, services
from chatsite.auth import user_for_request
from chatsite.languages import language_choices
from chatsite.models import Room, User


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers or {}


def error_response(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JsonResponse:
    response = JsonResponse({"error": {"code": code, "detail": detail}}, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def client_ip(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR") or "unknown"


def json_body(request: HttpRequest) -> dict[str, Any]:
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "bad_json", "The request body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "bad_json", "The request body must be a JSON object.")
    return body


def throttle(scope: str, identity: str, limit: int) -> None:
    if not ratelimit.hit(scope, identity, limit=limit, window_s=60):
        raise ApiError(
            429,
            "rate_limited",
            "Too many requests; retry later.",
            {"Retry-After": str(ratelimit.seconds_to_window_end(60))},
        )


_csrf_check = CsrfViewMiddleware(lambda request: None)


def api_view(*methods: str, auth: bool = True) -> Callable:
    """JSON errors, method check, bearer-or-session auth, and CSRF for session-authenticated unsafe calls.

    Bearer requests carry no ambient credential, so CSRF does not apply to them (as in Django REST framework).
    """

    def decorate(view: Callable) -> Callable:
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
            if request.method not in methods:
                return error_response(405, "method_not_allowed", f"Use {' or '.join(methods)}.")
            try:
                if auth:
                    user, via_token = user_for_request(request)
                    if user is None:
                        raise ApiError(401, "not_authenticated", "Log in or send 'Authorization: Bearer <token>'.")
                    if not via_token and request.method not in ("GET", "HEAD", "OPTIONS"):
                        rejected = _csrf_check.process_view(request, None, (), {})
                        if rejected is not None:
                            raise ApiError(403, "csrf_failed", "CSRF verification failed.")
                    request.api_user = user
                return view(request, *args, **kwargs)
            except ApiError as exc:
                return error_response(exc.status, exc.code, exc.detail, exc.headers)
            except services.ChatError as exc:
                return error_response(400, exc.code, exc.detail)

        return wrapper

    return decorate


def _member_room(slug: str, user: User) -> Room:
    try:
        return selectors.room_for_member(slug=slug, user=user)
    except Room.DoesNotExist as exc:
        raise ApiError(404, "not_found", f"No room {slug!r}.") from exc
    except selectors.NotAMember as exc:
        raise ApiError(403, "forbidden", "Only members may read or post in this room.") from exc


def _user_payload(user: User) -> dict[str, Any]:
    return {"id": user.id, "username": user.username, "language": user.language}


@api_view("POST", auth=False)
def signup(request: HttpRequest) -> JsonResponse:
    throttle("signup", client_ip(request), settings.BRIDGE_AUTH_RATE_PER_MINUTE)
    body = json_body(request)
    language = body.get("language")
    try:
        user = services.signup(
            username=str(body.get("username") or ""),
            password=str(body.get("password") or ""),
            language=language,
        )
    except services.ChatError as exc:
        if exc.code == "unknown_language":
            detail = f"{exc.detail} Choose one of: {', '.join(code for code, _ in language_choices())}."
            raise ApiError(400, "unknown_language", detail) from exc
        raise ApiError(409 if exc.code == "username_taken" else 400, exc.code, exc.detail) from exc
    return JsonResponse(_user_payload(user), status=201)


@api_view("POST", auth=False)
def token(request: HttpRequest) -> JsonResponse:
    throttle("token", client_ip(request), settings.BRIDGE_AUTH_RATE_PER_MINUTE)
    body = json_body(request)
    user = authenticate(request, username=str(body.get("username") or ""), password=str(body.get("password") or ""))
    if user is None:
        raise ApiError(400, "invalid_credentials", "Unknown username or wrong password.")
    return JsonResponse({"token": services.issue_token(user=user)})


@api_view("GET", "PATCH")
def me(request: HttpRequest) -> JsonResponse:
    user = request.api_user
    if request.method == "PATCH":
        body = json_body(request)
        if "language" in body:
            services.set_language(user=user, language=body["language"])
    return JsonResponse(_user_payload(user))


@api_view("GET", "POST")
def rooms(request: HttpRequest) -> JsonResponse:
    if request.method == "GET":
        listed = [
            {"slug": r.slug, "name": r.name, "members": r.member_count} for r in selectors.user_rooms(request.api_user)
        ]
        return JsonResponse({"rooms": listed})
    body = json_body(request)
    room = services.create_room(name=body.get("name"), creator=request.api_user)
    return JsonResponse({"slug": room.slug, "name": room.name}, status=201)


@api_view("POST")
def join(request: HttpRequest, slug: str) -> JsonResponse:
    try:
        room = selectors.room_by_slug(slug)
    except Room.DoesNotExist as exc:
        raise ApiError(404, "not_found", f"No room {slug!r}.") from exc
    services.join_room(room=room, user=request.api_user)
    return JsonResponse({"slug": room.slug, "name": room.name})


def _int_param(request: HttpRequest, name: str, default: int | None, low: int, high: int | None = None) -> int | None:
    raw = request.GET.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ApiError(400, "bad_parameter", f"'{name}' must be an integer.") from exc
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ApiError(400, "bad_parameter", f"'{name}' must be {bound}.")
    return value


@api_view("GET")
def messages(request: HttpRequest, slug: str) -> JsonResponse:
    room = _member_room(slug, request.api_user)
    limit = _int_param(request, "limit", 50, 1, settings.BRIDGE_HISTORY_LIMIT_MAX)
    after = _int_param(request, "after", None, 0)
    before = _int_param(request, "before", None, 1)
    listed = selectors.history(room=room, language=request.api_user.language, after=after, before=before, limit=limit)
    return JsonResponse({"messages": listed})
