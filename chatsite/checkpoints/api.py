"""Checkpoint API (CONTRACT.md): admins only."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse

from chatsite.api import ApiError, api_view, json_body, throttle
from chatsite.checkpoints import selectors, services


def _require_admin(request: HttpRequest) -> None:
    if not request.api_user.is_superuser:
        raise ApiError(403, "forbidden", "Admins only.")


def _run(action, **kwargs) -> JsonResponse:
    try:
        checkpoint = action(**kwargs)
    except services.CheckpointError as exc:
        raise ApiError(exc.status, exc.code, exc.detail) from exc
    return JsonResponse(selectors.checkpoint_payload(checkpoint))


@api_view("GET", "POST")
def checkpoints(request: HttpRequest) -> JsonResponse:
    _require_admin(request)
    if request.method == "GET":
        return JsonResponse({"checkpoints": selectors.listing()})
    throttle("upload", str(request.api_user.id), settings.BRIDGE_UPLOAD_RATE_PER_MINUTE)
    upload = request.FILES.get("file")
    if upload is None:
        raise ApiError(400, "file_required", "Send the archive as multipart field 'file' (.zip or .tar.gz).")
    try:
        checkpoint = services.upload(
            kind=request.POST.get("kind", ""),
            upload_file=upload,
            languages=request.POST.get("languages"),
            uploader=request.api_user,
        )
    except services.CheckpointError as exc:
        raise ApiError(exc.status, exc.code, exc.detail) from exc
    payload = {"id": checkpoint.id, "kind": checkpoint.kind, "version": checkpoint.version, "status": checkpoint.status}
    return JsonResponse(payload, status=201)


@api_view("POST")
def activate(request: HttpRequest, checkpoint_id: int) -> JsonResponse:
    _require_admin(request)
    body = json_body(request) if request.body and request.content_type == "application/json" else {}
    return _run(services.activate, checkpoint_id=checkpoint_id, actor=request.api_user, force=bool(body.get("force")))


@api_view("POST")
def rollback(request: HttpRequest, checkpoint_id: int) -> JsonResponse:
    _require_admin(request)
    return _run(services.rollback, checkpoint_id=checkpoint_id, actor=request.api_user)


@api_view("POST")
def shadow(request: HttpRequest, checkpoint_id: int) -> JsonResponse:
    _require_admin(request)
    body = json_body(request)
    return _run(
        services.set_shadow,
        checkpoint_id=checkpoint_id,
        actor=request.api_user,
        enabled=bool(body.get("enabled", True)),
    )
