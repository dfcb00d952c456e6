"""The translation engines of one worker process: built lazily on first use, shared by its task threads,
micro-batched per language pair, and cached by (route, source, target, normalised text)."""

from __future__ import annotations

import hashlib
import logging
import threading
import unicodedata
from collections.abc import Iterable

from django.conf import settings
from django.core.cache import cache

from chatsite.batching import MicroBatcher
from translation.engine.base import STATUS_OK, Translation
from translation.engine.routing import Router

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_router: Router | None = None


def router() -> Router:
    """The process's router over every installed engine (Apertium pairs today; active checkpoints first)."""
    global _router
    with _lock:
        if _router is None:
            _router = Router.default()
            logger.info("translation engines loaded: %d direct pairs", len(_router.direct_pairs()))
        return _router


def _run_batch(key: tuple[str, str, tuple[str, ...]], texts: list[str]) -> list[Translation]:
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
    digest = hashlib.sha256(
        "\x1f".join([route_label, source, target, normalise(text), *dnt]).encode()
    ).hexdigest()
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
