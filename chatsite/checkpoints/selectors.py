"""Reads of the checkpoint registry."""

from __future__ import annotations

from typing import Any

from chatsite.models import Checkpoint


def active(kind: str) -> list[Checkpoint]:
    return list(Checkpoint.objects.filter(kind=kind, status=Checkpoint.Status.ACTIVE).order_by("activated"))


def checkpoint_payload(checkpoint: Checkpoint) -> dict[str, Any]:
    return {
        "id": checkpoint.id,
        "kind": checkpoint.kind,
        "version": checkpoint.version,
        "status": checkpoint.status,
        "languages": checkpoint.languages or None,
        "metrics": checkpoint.metrics,
        "reasons": checkpoint.reasons,
        "previous": checkpoint.previous.version if checkpoint.previous else None,
        "uploaded_by": checkpoint.uploaded_by.username if checkpoint.uploaded_by else None,
        "created": checkpoint.created.isoformat(),
        "activated": checkpoint.activated.isoformat() if checkpoint.activated else None,
        "events": [
            {
                "action": e.action,
                "actor": e.actor.username if e.actor else None,
                "detail": e.detail,
                "created": e.created.isoformat(),
            }
            for e in checkpoint.events.all()
        ],
    }


def listing() -> list[dict[str, Any]]:
    queryset = Checkpoint.objects.select_related("previous", "uploaded_by").prefetch_related("events__actor")
    return [checkpoint_payload(c) for c in queryset[:200]]
