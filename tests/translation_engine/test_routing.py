"""Routing policy with stand-in engines (the router is the unit under test, not the engines)."""

from __future__ import annotations

import pytest

from translation.engine.base import (
    PRIORITY_APERTIUM,
    PRIORITY_MULTILINGUAL_CHECKPOINT,
    PRIORITY_PAIR_CHECKPOINT,
    EngineError,
    Translation,
)
from translation.engine.routing import Router


class TagEngine:
    """Marks each text with its leg, so a test can see which engines ran and in what order."""

    def __init__(self, name: str, pairs: set[tuple[str, str]], priority: int, fail: Exception | None = None):
        self.name = name
        self.version = "1"
        self.priority = priority
        self._pairs = pairs
        self.fail = fail
        self.calls: list[list[str]] = []

    def pairs(self) -> set[tuple[str, str]]:
        return self._pairs

    def translate_batch(self, texts: list[str], source: str, target: str) -> list[str]:
        self.calls.append(list(texts))
        if self.fail:
            raise self.fail
        return [f"{text} [{self.name}:{source}>{target}]" for text in texts]


def test_priority_pair_then_multilingual_then_apertium() -> None:
    apertium = TagEngine("apertium", {("en", "es"), ("es", "en")}, PRIORITY_APERTIUM)
    multi = TagEngine("m2m", {("en", "es"), ("es", "en"), ("en", "de")}, PRIORITY_MULTILINGUAL_CHECKPOINT)
    pair = TagEngine("opus-en-es", {("en", "es")}, PRIORITY_PAIR_CHECKPOINT)
    router = Router([apertium, multi, pair])
    assert router.route("en", "es").label == "opus-en-es@1"
    assert router.route("es", "en").label == "m2m@1"
    assert Router([apertium]).route("es", "en").label == "apertium@1"


def test_equal_priority_keeps_registration_order() -> None:
    first = TagEngine("first", {("en", "es")}, PRIORITY_APERTIUM)
    second = TagEngine("second", {("en", "es")}, PRIORITY_APERTIUM)
    assert Router([first, second]).route("en", "es").label == "first@1"


def test_pivot_through_spanish_runs_both_legs_in_order() -> None:
    en_es = TagEngine("a", {("en", "es")}, PRIORITY_APERTIUM)
    es_fr = TagEngine("b", {("es", "fr")}, PRIORITY_APERTIUM)
    router = Router([en_es, es_fr])
    route = router.route("en", "fr")
    assert route.pivot == "es"
    assert route.label == "a@1 > b@1"
    [result] = router.translate_batch(["hello"], "en", "fr")
    assert result == Translation(text="hello [a:en>es] [b:es>fr]", status="ok", engine="a@1 > b@1", reason=None)


def test_english_pivot_preferred_over_spanish_on_equal_quality() -> None:
    engines = [
        TagEngine(n, {p}, PRIORITY_APERTIUM)
        for n, p in [("a", ("fr", "es")), ("b", ("es", "de")), ("c", ("fr", "en")), ("d", ("en", "de"))]
    ]
    assert Router(engines).route("fr", "de").pivot == "en"


def test_pivot_chooses_the_stronger_chain() -> None:
    engines = [
        TagEngine("fr-en", {("fr", "en")}, PRIORITY_APERTIUM),
        TagEngine("en-de", {("en", "de")}, PRIORITY_APERTIUM),
        TagEngine("multi", {("fr", "es"), ("es", "de")}, PRIORITY_MULTILINGUAL_CHECKPOINT),
    ]
    assert Router(engines).route("fr", "de").pivot == "es"


def test_direct_route_beats_pivot_even_if_weaker() -> None:
    engines = [
        TagEngine("direct", {("en", "fr")}, PRIORITY_APERTIUM),
        TagEngine("legs", {("en", "es"), ("es", "fr")}, PRIORITY_PAIR_CHECKPOINT),
    ]
    assert Router(engines).route("en", "fr").label == "direct@1"


def test_no_route_is_untranslated_never_faked() -> None:
    router = Router([TagEngine("a", {("en", "es")}, PRIORITY_APERTIUM)])
    results = router.translate_batch(["hi", "there"], "en", "ja")
    assert results == [Translation(None, "untranslated", None, "no route from en to ja")] * 2
    assert Router([]).route("en", "es") is None


def test_same_language_is_a_caller_bug() -> None:
    with pytest.raises(ValueError):
        Router([]).translate_batch(["hi"], "en", "en")


def test_one_engine_call_per_leg_for_a_batch() -> None:
    en_es = TagEngine("a", {("en", "es")}, PRIORITY_APERTIUM)
    Router([en_es]).translate_batch(["one", "two", "three"], "en", "es")
    assert en_es.calls == [["one", "two", "three"]]


def test_engine_errors_propagate_and_foreign_errors_are_wrapped() -> None:
    broken = TagEngine("a", {("en", "es")}, PRIORITY_APERTIUM, fail=EngineError("down"))
    with pytest.raises(EngineError, match="down"):
        Router([broken]).translate_batch(["hi"], "en", "es")
    crashing = TagEngine("b", {("en", "es")}, PRIORITY_APERTIUM, fail=RuntimeError("CUDA out of memory"))
    with pytest.raises(EngineError, match="b@1 failed on en->es: CUDA out of memory"):
        Router([crashing]).translate_batch(["hi"], "en", "es")


def test_wrong_output_length_is_an_engine_error() -> None:
    class Short(TagEngine):
        def translate_batch(self, texts, source, target):
            return texts[:-1]

    with pytest.raises(EngineError, match="returned 1 texts for 2"):
        Router([Short("s", {("en", "es")}, 1)]).translate_batch(["a b c", "d e f"], "en", "es")


def test_protected_spans_and_dnt_bypass_the_engine() -> None:
    en_es = TagEngine("a", {("en", "es")}, PRIORITY_APERTIUM)
    [result] = Router([en_es]).translate_batch(["ping @ana about Bridge at https://x.io"], "en", "es", dnt=["Bridge"])
    assert result.text.startswith("ping @ana about Bridge at https://x.io")
    sent = en_es.calls[0][0]
    assert "@ana" not in sent and "Bridge" not in sent and "https" not in sent


def test_only_spans_means_no_engine_call() -> None:
    en_es = TagEngine("a", {("en", "es")}, PRIORITY_APERTIUM)
    [result] = Router([en_es]).translate_batch(["@ana 😀 https://x.io"], "en", "es")
    assert result.text == "@ana 😀 https://x.io" and result.status == "ok"
    assert en_es.calls == []
