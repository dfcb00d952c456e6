"""Reads of the checkpoint registry."""

from __future__ import annotations

from typing import Any

from django.db.models import Avg, Count, Q

from chatsite.models import Checkpoint


def active(kind: str) -> list[Checkpoint]:
    return list(Checkpoint.objects.filter(kind=kind, status=Checkpoint.Status.ACTIVE).order_by("activated"))


def shadow_candidate(kind: str) -> Checkpoint | None:
    return Checkpoint.objects.filter(kind=kind, status=Checkpoint.Status.READY, shadow=True).order_by("-id").first()


def shadow_summary(checkpoint: Checkpoint) -> dict[str, Any] | None:
    """Agreement with the active version on live traffic, and latency side by side (per text, ms)."""
    figures = checkpoint.shadow_results.aggregate(
        n=Count("id"),
        agree=Count("id", filter=Q(agree=True)),
        active_ms=Avg("active_ms"),
        candidate_ms=Avg("candidate_ms"),
    )
    if not figures["n"]:
        return {"enabled": checkpoint.shadow, "messages": 0} if checkpoint.shadow else None
    return {
        "enabled": checkpoint.shadow,
        "messages": figures["n"],
        "agreement": round(figures["agree"] / figures["n"], 4),
        "active_ms": round(figures["active_ms"], 2),
        "candidate_ms": round(figures["candidate_ms"], 2),
    }


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
        "shadow": shadow_summary(checkpoint),
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
