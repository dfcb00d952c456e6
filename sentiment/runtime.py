"""The emotion engine of one worker process: loaded lazily from the active checkpoint, micro-batched."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from chatsite import metrics
from chatsite.batching import MicroBatcher
from sentiment.engine import SentimentEngine, SentimentPrediction
from sentiment.services import ModelUnavailable

logger = logging.getLogger(__name__)


_lock = threading.Lock()
_engine: SentimentEngine | None = None
_engine_source: tuple[str, str] | None = None  # (directory, version) the loaded engine came from
_loaded_stamp: int | None = None


def default_checkpoint_dir() -> Path:
    return Path(settings.BRIDGE_MODEL_ROOT) / "sentiment" / "default"


def active_checkpoint_dir() -> Path:
    return Path(settings.BRIDGE_SENTIMENT_MODEL_DIR or default_checkpoint_dir())


def _active_source() -> tuple[Path, str]:
    """The active uploaded checkpoint, else the configured or built-in default."""
    from chatsite.checkpoints.selectors import active

    uploaded = active("sentiment")
    if uploaded:
        return Path(uploaded[-1].model_dir), uploaded[-1].version
    path = active_checkpoint_dir()
    stamp = path / "VERSION"
    return path, stamp.read_text().strip() if stamp.exists() else "default"


def engine() -> SentimentEngine:
    """The engine of the active version. Activation bumps a stamp in the cache; one GET per call notices it, and
    the next batch loads the new version (a batch already running keeps the engine it started with)."""
    global _engine, _engine_source, _loaded_stamp
    from chatsite.checkpoints.services import current_stamp

    stamp = current_stamp("sentiment")
    with _lock:
        if _engine is not None and stamp == _loaded_stamp:
            return _engine
        path, version = _active_source()
        if _engine is None or _engine_source != (str(path), version):
            if not (path / "config.json").exists():
                metrics.ERRORS.labels(kind="model_load_failed").inc()
                raise ModelUnavailable(f"no emotion checkpoint at {path} (build it: python manage.py build_models)")
            try:
                loaded = SentimentEngine.from_directory(
                    path, name="bridge-emotion", version=version, cpu_int8=settings.BRIDGE_SENTIMENT_CPU_INT8
                )
            except Exception as exc:
                metrics.ERRORS.labels(kind="model_load_failed").inc()
                raise ModelUnavailable(f"emotion checkpoint at {path} failed to load: {exc}") from exc
            metrics.serve_model("sentiment", loaded.label, _engine.label if _engine is not None else None)
            _engine = loaded
            _engine_source = (str(path), version)
            logger.info("emotion engine %s (%s) loaded from %s", version, loaded.precision, path)
        _refresh_shadow()
        _loaded_stamp = stamp
        return _engine


_shadow: tuple[int, str, SentimentEngine] | None = None  # (checkpoint id, version, engine) of the candidate


def _refresh_shadow() -> None:
    """Loads the ready candidate an admin put in shadow mode, or drops it. Runs under the stamp check in
    engine(): enabling or disabling shadow mode bumps the stamp like an activation does."""
    global _shadow
    from chatsite.checkpoints.selectors import shadow_candidate

    candidate = shadow_candidate("sentiment")
    if candidate is None:
        _shadow = None
    elif _shadow is None or _shadow[1] != candidate.version:
        try:
            loaded = SentimentEngine.from_directory(
                candidate.model_dir,
                name="bridge-emotion",
                version=candidate.version,
                cpu_int8=settings.BRIDGE_SENTIMENT_CPU_INT8,
            )
            _shadow = (candidate.id, candidate.version, loaded)
        except Exception:
            logger.exception("shadow candidate %s failed to load; shadow mode skipped", candidate.version)
            _shadow = None


@dataclass(frozen=True)
class Tagged:
    """One text's emotion from the active version, and the shadow candidate's verdict when one is running."""

    prediction: SentimentPrediction
    engine_label: str
    active_ms: float
    shadow: tuple[int, SentimentPrediction, float] | None = None  # (checkpoint id, prediction, ms per text)


def _run_batch(key: str, texts: list[str]) -> list[Tagged]:
    metrics.BATCH_SIZE.labels(kind="sentiment").observe(len(texts))
    current = engine()
    shadow = _shadow
    started = time.perf_counter()
    predictions = current.predict_batch(texts)
    active_ms = (time.perf_counter() - started) * 1000 / len(texts)
    shadow_results: list[tuple[int, SentimentPrediction, float] | None] = [None] * len(texts)
    if shadow is not None:
        # After the active batch, so the shadow never delays what readers see by more than its own run time.
        checkpoint_id, _, candidate = shadow
        started = time.perf_counter()
        candidate_predictions = candidate.predict_batch(texts)
        candidate_ms = (time.perf_counter() - started) * 1000 / len(texts)
        shadow_results = [(checkpoint_id, p, candidate_ms) for p in candidate_predictions]
    return [
        Tagged(prediction, current.label, active_ms, shadow_result)
        for prediction, shadow_result in zip(predictions, shadow_results, strict=True)
    ]


_batcher: MicroBatcher[str, str, Tagged] = MicroBatcher(
    _run_batch,
    max_batch=settings.BRIDGE_SENTIMENT_MAX_BATCH,
    max_wait_s=settings.BRIDGE_SENTIMENT_MAX_WAIT_MS / 1000,
)


def predict(text: str) -> Tagged:
    """The emotion of one text (and the shadow candidate's, if any), batched with concurrent callers."""
    return _batcher.submit("emotion", text)
