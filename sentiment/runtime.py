"""The emotion engine of one worker process: loaded lazily from the active checkpoint, micro-batched."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from django.conf import settings

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
                raise ModelUnavailable(f"no emotion checkpoint at {path} (build it: python manage.py build_models)")
            try:
                _engine = SentimentEngine.from_directory(path, name="bridge-emotion", version=version)
            except Exception as exc:
                raise ModelUnavailable(f"emotion checkpoint at {path} failed to load: {exc}") from exc
            _engine_source = (str(path), version)
            logger.info("emotion engine %s loaded from %s", version, path)
        _loaded_stamp = stamp
        return _engine


def _run_batch(key: str, texts: list[str]) -> list[tuple[SentimentPrediction, str]]:
    current = engine()
    return [(prediction, current.label) for prediction in current.predict_batch(texts)]


_batcher: MicroBatcher[str, str, tuple[SentimentPrediction, str]] = MicroBatcher(
    _run_batch,
    max_batch=settings.BRIDGE_SENTIMENT_MAX_BATCH,
    max_wait_s=settings.BRIDGE_SENTIMENT_MAX_WAIT_MS / 1000,
)


def predict(text: str) -> tuple[SentimentPrediction, str]:
    """(prediction, "name@version" of the engine that made it) for one text, batched with concurrent callers."""
    return _batcher.submit("emotion", text)
