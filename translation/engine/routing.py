"""Choosing an engine (or a chain of two) for a language pair, and translating a batch along it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from translation.engine.base import STATUS_OK, EngineError, Translation, TranslationEngine, engine_label
from translation.engine.spans import translate_protected

DEFAULT_PIVOTS = ("en", "es")


def _priority(engine: TranslationEngine) -> int:
    return int(getattr(engine, "priority", 0))


@dataclass(frozen=True)
class Route:
    """The engines a text passes through, in order: one for a direct route, two for a pivot."""

    source: str
    target: str
    legs: tuple[tuple[TranslationEngine, str, str], ...]  # (engine, leg source, leg target)

    @property
    def label(self) -> str:
        """``name@version``, legs joined by " > ": what each translation records as its engine."""
        return " > ".join(engine_label(engine) for engine, _, _ in self.legs)

    @property
    def pivot(self) -> str | None:
        return self.legs[0][2] if len(self.legs) > 1 else None

    def translate_texts(self, texts: list[str]) -> list[str]:
        """Run ``texts`` through every leg (no span protection; see Router.translate_batch)."""
        for engine, source, target in self.legs:
            if not texts:
                return texts
            try:
                outputs = engine.translate_batch(list(texts), source, target)
            except EngineError:
                raise
            except Exception as exc:  # a torch/OS error is as transient as any other engine failure
                raise EngineError(f"{engine_label(engine)} failed on {source}->{target}: {exc}") from exc
            if len(outputs) != len(texts):
                raise EngineError(f"{engine_label(engine)} returned {len(outputs)} texts for {len(texts)}")
            texts = list(outputs)
        return texts


class Router:
    """Picks the best route per pair: pair checkpoint > multilingual checkpoint > Apertium > pivot.

    Engines rank by their ``priority`` attribute (see base.PRIORITY_*); on a tie the engine listed first
    wins. Works with Apertium alone, which is the default deployment.
    """

    def __init__(self, engines: Iterable[TranslationEngine], *, pivots: Sequence[str] = DEFAULT_PIVOTS):
        self.engines = list(engines)
        self.pivots = tuple(pivots)
        self._direct: dict[tuple[str, str], TranslationEngine] = {}
        # Stable sort: among equal priorities, registration order decides.
        for engine in sorted(self.engines, key=_priority, reverse=True):
            for pair in engine.pairs():
                self._direct.setdefault(pair, engine)

    @classmethod
    def default(
        cls, extra_engines: Iterable[TranslationEngine] = (), apertium: Iterable[TranslationEngine] | None = None
    ) -> Router:
        """``extra_engines`` (checkpoints) plus every installed Apertium pair (``apertium``: engines already
        discovered, so a rebuilt router keeps their running stages)."""
        from translation.engine.apertium import ApertiumEngine

        return cls([*extra_engines, *(ApertiumEngine.discover() if apertium is None else apertium)])

    def direct_pairs(self) -> set[tuple[str, str]]:
        return set(self._direct)

    def route(self, source: str, target: str) -> Route | None:
        """The best route from ``source`` to ``target``, or None when nothing covers the pair."""
        engine = self._direct.get((source, target))
        if engine is not None:
            return Route(source, target, ((engine, source, target),))
        candidates = []
        for order, pivot in enumerate(self.pivots):
            if pivot in (source, target):
                continue
            first = self._direct.get((source, pivot))
            second = self._direct.get((pivot, target))
            if first is not None and second is not None:
                # The weaker leg bounds the quality of the chain; earlier pivots win ties.
                candidates.append((min(_priority(first), _priority(second)), -order, pivot, first, second))
        if not candidates:
            return None
        _, _, pivot, first, second = max(candidates, key=lambda item: item[:2])
        return Route(source, target, ((first, source, pivot), (second, pivot, target)))

    def translate_batch(
        self, texts: Sequence[str], source: str, target: str, dnt: Iterable[str] = ()
    ) -> list[Translation]:
        """Translate ``texts`` from ``source`` to ``target`` in one batch per engine, keeping protected spans.

        No route gives ``untranslated`` results (never a fake translation); engine failures raise EngineError
        so the caller can retry and finally record ``failed``.
        """
        if source == target:
            raise ValueError(f"source and target are both {source!r}: nothing to translate")
        route = self.route(source, target)
        if route is None:
            return [Translation.untranslated(f"no route from {source} to {target}") for _ in texts]
        translate_fn: Callable[[list[str]], list[str]] = route.translate_texts
        try:
            outputs = translate_protected(list(texts), translate_fn, dnt)
        except ValueError as exc:  # a length mismatch surfaced by translate_protected
            raise EngineError(f"{route.label}: {exc}") from exc
        return [Translation(text=output, status=STATUS_OK, engine=route.label, reason=None) for output in outputs]
