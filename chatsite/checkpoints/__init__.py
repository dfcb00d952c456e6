"""Checkpoint intake: safe archive inspection, extraction and model-directory validation (framework-free)."""

from chatsite.checkpoints.archive import (
    ALLOWED_ARCHITECTURES,
    ArchiveEntry,
    ArchiveLimits,
    ArchiveManifest,
    ArchiveRejected,
    ValidatedModel,
    accept_archive,
    check_safetensors,
    extract_safely,
    inspect_archive,
    validate_model_dir,
)

__all__ = [
    "ALLOWED_ARCHITECTURES",
    "ArchiveEntry",
    "ArchiveLimits",
    "ArchiveManifest",
    "ArchiveRejected",
    "ValidatedModel",
    "accept_archive",
    "check_safetensors",
    "extract_safely",
    "inspect_archive",
    "validate_model_dir",
]
