"""Writes of the checkpoint registry: upload, validate (worker side), activate, roll back. Every step is audited.

An upload is checked from its archive headers before anything is extracted, extracted with byte counters
enforced, and its directory validated (config, safetensors headers, tokenizer) before any model code loads it.
Activation bumps a stamp in the cache; workers compare it before each batch and reload the active version.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from functools import partial
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from chatsite.checkpoints import archive
from chatsite.languages import is_served
from chatsite.models import Checkpoint, CheckpointEvent, User

logger = logging.getLogger(__name__)


class CheckpointError(Exception):
    def __init__(self, code: str, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.code, self.detail, self.status = code, detail, status


class ValidationBusy(Exception):
    """Another worker is validating this checkpoint now (a re-delivered task): try again later."""


def stamp_key(kind: str) -> str:
    return f"checkpoints:stamp:{kind}"


def current_stamp(kind: str) -> int:
    return int(cache.get(stamp_key(kind)) or 0)


def _bump_stamp(kind: str) -> None:
    cache.add(stamp_key(kind), 0, timeout=None)
    cache.incr(stamp_key(kind))


def storage_dir(checkpoint_id: int) -> Path:
    return Path(settings.BRIDGE_MODEL_ROOT) / "checkpoints" / str(checkpoint_id)


def _audit(checkpoint: Checkpoint, action: str, actor: User | None = None, **detail: Any) -> None:
    CheckpointEvent.objects.create(checkpoint=checkpoint, actor=actor, action=action, detail=detail)


def parse_languages(kind: str, languages: str | None) -> str:
    if kind == Checkpoint.Kind.SENTIMENT:
        return ""
    pairs = [pair.strip() for pair in (languages or "").split(",") if pair.strip()]
    if not pairs:
        raise CheckpointError("languages_required", "A translation checkpoint needs 'languages', e.g. en-es.")
    for pair in pairs:
        source, _, target = pair.partition("-")
        if not (is_served(source) or source) or not target or source == target:
            raise CheckpointError("invalid_languages", f"{pair!r} is not a language pair like en-es.")
    return ",".join(pairs)


def upload(*, kind: str, upload_file: UploadedFile, languages: str | None, uploader: User) -> Checkpoint:
    """Stores the archive, refuses it at once when its headers are unsafe, and enqueues the validation task."""
    if kind not in Checkpoint.Kind.values:
        raise CheckpointError("invalid_kind", "kind must be 'translation' or 'sentiment'.")
    pairs = parse_languages(kind, languages)
    limits = archive.ArchiveLimits(max_compressed_bytes=settings.BRIDGE_CHECKPOINT_MAX_UPLOAD_BYTES)
    if upload_file.size > limits.max_compressed_bytes:
        raise CheckpointError("too_large", f"The archive is larger than {limits.max_compressed_bytes} bytes.", 413)
    checkpoint = Checkpoint.objects.create(
        kind=kind,
        version=f"pending-{timezone.now().timestamp()}",
        languages=pairs,
        archive_sha256="",
        uploaded_by=uploader,
    )
    checkpoint.version = f"{kind}-v{checkpoint.id}"
    folder = storage_dir(checkpoint.id)
    folder.mkdir(parents=True, exist_ok=True)
    stored = folder / "upload.archive"
    digest = hashlib.sha256()
    with stored.open("wb") as out:  # chunk by chunk: never held in memory whole
        for chunk in upload_file.chunks():
            digest.update(chunk)
            out.write(chunk)
    checkpoint.archive_sha256, checkpoint.archive_bytes = digest.hexdigest(), stored.stat().st_size
    checkpoint.save()
    _audit(checkpoint, "upload", uploader, sha256=checkpoint.archive_sha256, bytes=checkpoint.archive_bytes)
    try:
        archive.inspect_archive(stored, kind=kind, limits=limits)
    except archive.ArchiveRejected as exc:
        # Recorded (the admin sees why), and the bytes are deleted: nothing of it is ever extracted or loaded.
        stored.unlink(missing_ok=True)
        _finish_validation(checkpoint.id, rejected=[{"code": exc.code, "detail": exc.detail}])
        raise CheckpointError(exc.code, exc.detail) from exc
    transaction.on_commit(partial(_enqueue_validation, checkpoint.id, kind))
    return checkpoint


def _enqueue_validation(checkpoint_id: int, kind: str) -> None:
    from chatsite.tasks import validate_checkpoint

    # On the queue of its kind: the host that will run the model validates it.
    validate_checkpoint.apply_async(args=[checkpoint_id], queue=kind)


def validate(*, checkpoint_id: int) -> Checkpoint:
    """Worker side: extract safely, validate the directory, evaluate on the held-out set, record the figures."""
    from chatsite.checkpoints.evaluation import evaluate

    checkpoint = Checkpoint.objects.get(pk=checkpoint_id)
    if checkpoint.status != Checkpoint.Status.VALIDATING:
        return checkpoint
    # A validation can outlast the broker's visibility timeout, and the broker then delivers the task again while
    # the first run is still working: one lease per checkpoint, so the second waits (the task retries) instead of
    # extracting over files the first is loading. The lease expires, so a run that died is taken over.
    lease = f"checkpoints:validating:{checkpoint.id}"
    if not cache.add(lease, 1, timeout=settings.BRIDGE_VALIDATION_LEASE_S):
        raise ValidationBusy(checkpoint.id)
    try:
        return _validate(checkpoint, evaluate)
    finally:
        cache.delete(lease)


def _validate(checkpoint: Checkpoint, evaluate) -> Checkpoint:
    folder = storage_dir(checkpoint.id)
    stored, model_dir = folder / "upload.archive", folder / "model"
    limits = archive.ArchiveLimits()
    try:
        if model_dir.exists():
            shutil.rmtree(model_dir)  # a run that died part-way left files: start clean (we hold the lease)
        archive.accept_archive(stored, model_dir, kind=checkpoint.kind, limits=limits)
        metrics = evaluate(checkpoint.kind, model_dir, checkpoint.pairs(), version=checkpoint.version)
    except archive.ArchiveRejected as exc:
        return _finish_validation(checkpoint.id, rejected=[{"code": exc.code, "detail": exc.detail}])
    except Exception as exc:  # a model that does not load or predict is rejected, with the reason
        logger.exception("checkpoint %s failed validation", checkpoint.id)
        return _finish_validation(checkpoint.id, rejected=[{"code": "evaluation_failed", "detail": str(exc)[:500]}])
    return _finish_validation(checkpoint.id, model_dir=str(model_dir), metrics=metrics)


@transaction.atomic
def _finish_validation(
    checkpoint_id: int, *, rejected: list | None = None, model_dir: str = "", metrics: dict | None = None
) -> Checkpoint:
    checkpoint = Checkpoint.objects.select_for_update().get(pk=checkpoint_id)
    if rejected:
        checkpoint.status, checkpoint.reasons = Checkpoint.Status.REJECTED, rejected
        _audit(checkpoint, "rejected", None, reasons=rejected)
    else:
        checkpoint.status, checkpoint.model_dir, checkpoint.metrics = Checkpoint.Status.READY, model_dir, metrics or {}
        _audit(checkpoint, "validated", None, metrics=metrics or {})
    checkpoint.save()
    return checkpoint


def _competitors(checkpoint: Checkpoint) -> list[Checkpoint]:
    """The active checkpoints this one would replace: same kind, and for translation an overlapping pair."""
    active = Checkpoint.objects.select_for_update().filter(kind=checkpoint.kind, status=Checkpoint.Status.ACTIVE)
    if checkpoint.kind == Checkpoint.Kind.SENTIMENT:
        return list(active)
    mine = set(checkpoint.pairs())
    return [other for other in active if mine & set(other.pairs())]


def headline(kind: str, metrics: dict) -> float | None:
    """The figure the activation gate compares: macro-F1 for emotion, mean chrF over pairs for translation."""
    if kind == Checkpoint.Kind.SENTIMENT:
        return metrics.get("macro_f1")
    pairs = metrics.get("pairs") or {}
    values = [figures["chrf"] for figures in pairs.values() if isinstance(figures, dict) and "chrf" in figures]
    return sum(values) / len(values) / 100 if values else None  # chrF is 0..100; the margin is on a 0..1 scale


@transaction.atomic
def activate(*, checkpoint_id: int, actor: User, force: bool = False) -> Checkpoint:
    checkpoint = Checkpoint.objects.select_for_update().filter(pk=checkpoint_id).first()
    if checkpoint is None:
        raise CheckpointError("not_found", f"No checkpoint {checkpoint_id}.", 404)
    if checkpoint.status not in (Checkpoint.Status.READY, Checkpoint.Status.RETIRED):
        raise CheckpointError(
            "not_ready", f"Only a ready (or retired) checkpoint can be activated, not {checkpoint.status}."
        )
    replaced = _competitors(checkpoint)
    candidate_score = headline(checkpoint.kind, checkpoint.metrics)
    margin = settings.BRIDGE_CHECKPOINT_MARGIN
    for other in replaced:
        other_score = headline(other.kind, other.metrics)
        if (
            not force
            and candidate_score is not None
            and other_score is not None
            and candidate_score < other_score - margin
        ):
            raise CheckpointError(
                "worse_than_active",
                f"{checkpoint.version} scores {candidate_score:.3f}, active {other.version} {other_score:.3f} "
                f"(margin {margin}); pass force=true to activate anyway.",
                409,
            )
    for other in replaced:
        other.status = Checkpoint.Status.RETIRED
        other.save(update_fields=["status"])
    checkpoint.previous = replaced[0] if replaced else None
    checkpoint.status, checkpoint.activated, checkpoint.shadow = Checkpoint.Status.ACTIVE, timezone.now(), False
    checkpoint.save(update_fields=["previous", "status", "activated", "shadow"])
    _audit(checkpoint, "activate", actor, replaced=[o.version for o in replaced], forced=force)
    transaction.on_commit(partial(_bump_stamp, checkpoint.kind))
    return checkpoint


@transaction.atomic
def rollback(*, checkpoint_id: int, actor: User) -> Checkpoint:
    """Retires an active checkpoint and reactivates the one it replaced (or the built-in default when none)."""
    checkpoint = Checkpoint.objects.select_for_update().filter(pk=checkpoint_id).first()
    if checkpoint is None:
        raise CheckpointError("not_found", f"No checkpoint {checkpoint_id}.", 404)
    if checkpoint.status != Checkpoint.Status.ACTIVE:
        raise CheckpointError("not_active", "Only the active checkpoint can be rolled back.")
    checkpoint.status = Checkpoint.Status.RETIRED
    checkpoint.save(update_fields=["status"])
    restored = checkpoint.previous
    if restored is not None:
        restored.status, restored.activated = Checkpoint.Status.ACTIVE, timezone.now()
        restored.save(update_fields=["status", "activated"])
    _audit(checkpoint, "rollback", actor, restored=restored.version if restored else "built-in default")
    transaction.on_commit(partial(_bump_stamp, checkpoint.kind))
    return restored or checkpoint


@transaction.atomic
def set_shadow(*, checkpoint_id: int, actor: User, enabled: bool) -> Checkpoint:
    """Runs a ready candidate beside the active version on live traffic, unseen by users (one at a time per kind)."""
    checkpoint = Checkpoint.objects.select_for_update().filter(pk=checkpoint_id).first()
    if checkpoint is None:
        raise CheckpointError("not_found", f"No checkpoint {checkpoint_id}.", 404)
    if enabled and checkpoint.status != Checkpoint.Status.READY:
        raise CheckpointError("not_ready", "Only a ready checkpoint can run in shadow mode.")
    if enabled:
        Checkpoint.objects.filter(kind=checkpoint.kind, shadow=True).exclude(pk=checkpoint.pk).update(shadow=False)
    checkpoint.shadow = enabled
    checkpoint.save(update_fields=["shadow"])
    _audit(checkpoint, "shadow_on" if enabled else "shadow_off", actor)
    transaction.on_commit(partial(_bump_stamp, checkpoint.kind))
    return checkpoint
