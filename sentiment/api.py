"""Moderation API (CONTRACT.md): moderators only."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from chatsite.api import ApiError, api_view, json_body
from sentiment import selectors, services
from sentiment.models import Flag


def _require_moderator(request: HttpRequest) -> None:
    if not selectors.is_moderator(request.api_user):
        raise ApiError(403, "forbidden", "Moderators only.")


@api_view("GET")
def flags(request: HttpRequest) -> JsonResponse:
    _require_moderator(request)
    status = request.GET.get("status", "open")
    if status not in Flag.Status.values and status != "all":
        raise ApiError(400, "bad_parameter", f"status must be one of {', '.join(Flag.Status.values)} or all.")
    listed = selectors.flags(None if status == "all" else status)[:200]
    return JsonResponse({"flags": [selectors.flag_payload(flag) for flag in listed]})


@api_view("POST")
def resolve(request: HttpRequest, flag_id: int) -> JsonResponse:
    _require_moderator(request)
    body = json_body(request)
    try:
        flag = services.resolve_flag(
            flag_id=flag_id,
            moderator=request.api_user,
            action=body.get("action"),
            note=str(body.get("note") or ""),
        )
    except services.ModerationError as exc:
        raise ApiError(404 if exc.code == "not_found" else 400, exc.code, exc.detail) from exc
    return JsonResponse({"id": flag.id, "status": flag.status})


@api_view("POST")
def appeal(request: HttpRequest, flag_id: int) -> JsonResponse:
    body = json_body(request)
    try:
        flag = services.appeal(flag_id=flag_id, author=request.api_user, text=str(body.get("text") or ""))
    except services.ModerationError as exc:
        raise ApiError(404 if exc.code == "not_found" else 400, exc.code, exc.detail) from exc
    return JsonResponse({"id": flag.id, "status": flag.status, "appealed": flag.appealed})
