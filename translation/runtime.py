"""The translation engines of one worker process: built lazily on first use, shared by its task threads,
micro-batched per language pair, and cached by (route, source, target, normalised text)."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import unicodedata
from collections.abc import Iterable

from django.conf import settings
from django.core.cache import cache

from chatsite import metrics
from chatsite.batching import MicroBatcher
from translation.engine.apertium import ApertiumEngine
from translation.engine.base import STATUS_OK, Translation
from translation.engine.hf import Seq2SeqEngine
from translation.engine.routing import Router

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_router: Router | None = None
_loaded_stamp: int | None = None
_checkpoint_engines: dict[str, Seq2SeqEngine] = {}  # by checkpoint version: loaded once, reused across reloads
_apertium_engines: list[ApertiumEngine] | None = None  # discovered once: their stages keep running across reloads


def _checkpoint_engine(checkpoint) -> Seq2SeqEngine | None:
    """A registry checkpoint's engine, loaded once per process; None (logged, counted) when it fails to load."""
    if checkpoint.version not in _checkpoint_engines:
        try:
            _checkpoint_engines[checkpoint.version] = Seq2SeqEngine.from_directory(
                checkpoint.model_dir, pairs=checkpoint.pairs(), name="bridge-mt", version=checkpoint.version
            )
        except Exception:
            metrics.ERRORS.labels(kind="model_load_failed").inc()
            logger.exception("translation checkpoint %s failed to load", checkpoint.version)
            return None
    return _checkpoint_engines[checkpoint.version]


_shadow: tuple[int, Seq2SeqEngine] | None = None  # (checkpoint id, engine) of the candidate in shadow mode


def _refresh_shadow() -> None:
    """Loads the ready candidate an admin put in shadow mode, or drops it (under the stamp check in router())."""
    global _shadow
    from chatsite.checkpoints.selectors import shadow_candidate

    candidate = shadow_candidate("translation")
    engine = _checkpoint_engine(candidate) if candidate is not None else None
    _shadow = (candidate.id, engine) if engine is not None else None


def shadow_translate(text: str, source: str, target: str) -> tuple[int, str, float] | None:
    """What the shadow candidate makes of `text`, for the record only: (checkpoint id, text, ms). None when no
    candidate runs or it does not cover the pair. Runs after the reader's translation is stored."""
    shadow = _shadow
    if shadow is None or (source, target) not in shadow[1].pairs():
        return None
    started = time.perf_counter()
    [candidate] = shadow[1].translate_batch([text], source, target)
    return shadow[0], candidate, (time.perf_counter() - started) * 1000


def _active_checkpoint_engines() -> list[Seq2SeqEngine]:
    from chatsite.checkpoints.selectors import active

    # A checkpoint that fails to load must not take translation down: the pair falls back to the next route
    # (Apertium or a pivot), and the error is logged and counted for the operator.
    loaded = (_checkpoint_engine(checkpoint) for checkpoint in active("translation"))
    return [engine for engine in loaded if engine is not None]


def router() -> Router:
    """The process's router: active checkpoints first, then every installed Apertium pair. Rebuilt when an
    activation or rollback bumps the stamp (one cache GET per call notices it)."""
    global _router, _loaded_stamp, _apertium_engines
    from chatsite.checkpoints.services import current_stamp

    stamp = current_stamp("translation")
    with _lock:
        if _router is None or stamp != _loaded_stamp:
            if _apertium_engines is None:
                _apertium_engines = ApertiumEngine.discover(persistent=settings.BRIDGE_APERTIUM_PERSISTENT)
            previous = {_label(engine) for engine in _router.engines} if _router is not None else set()
            _router = Router.default(extra_engines=_active_checkpoint_engines(), apertium=_apertium_engines)
            _refresh_shadow()
            serving = {_label(engine) for engine in _router.engines}
            for label in previous - serving:
                metrics.MODEL_IN_USE.labels(kind="translation", version=label).set(0)
            for label in serving:
                metrics.serve_model("translation", label)
            _loaded_stamp = stamp
            logger.info("translation engines loaded: %d direct pairs", len(_router.direct_pairs()))
        return _router


def _label(engine) -> str:
    return f"{engine.name}@{engine.version}"


def _run_batch(key: tuple[str, str, tuple[str, ...]], texts: list[str]) -> list[Translation]:
    metrics.BATCH_SIZE.labels(kind="translation").observe(len(texts))
    source, target, dnt = key
    return router().translate_batch(texts, source, target, dnt)


_batcher: MicroBatcher[tuple[str, str, tuple[str, ...]], str, Translation] = MicroBatcher(
    _run_batch,
    max_batch=settings.BRIDGE_TRANSLATION_MAX_BATCH,
    max_wait_s=settings.BRIDGE_TRANSLATION_MAX_WAIT_MS / 1000,
)


def normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def _cache_key(route_label: str, source: str, target: str, text: str, dnt: tuple[str, ...]) -> str:
    digest = hashlib.sha256("\x1f".join([route_label, source, target, normalise(text), *dnt]).encode()).hexdigest()
    return f"tr:{digest}"


def translate(text: str, source: str, target: str, dnt: Iterable[str] = ()) -> Translation:
    """One text through the best route, batched with concurrent callers. Raises EngineError on engine failure."""
    dnt_key = tuple(sorted(set(dnt)))
    route = router().route(source, target)
    if route is None:
        return Translation.untranslated(f"no route from {source} to {target}")
    key = _cache_key(route.label, source, target, text, dnt_key)
    cached = cache.get(key)
    if cached is not None:
        return Translation(text=cached, status=STATUS_OK, engine=route.label)
    result = _batcher.submit((source, target, dnt_key), text)
    if result.status == STATUS_OK:
        cache.set(key, result.text, timeout=7 * 86400)
    return result
