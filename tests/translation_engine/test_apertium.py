"""Apertium on real sentences through Debian's installed pairs (skipped where apertium is not installed)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from translation.engine.apertium import ApertiumEngine
from translation.engine.routing import Router

pytestmark = pytest.mark.skipif(shutil.which("apertium") is None, reason="Debian apertium not installed")


@pytest.fixture(scope="module")
def engines() -> dict[tuple[str, str], ApertiumEngine]:
    return {next(iter(engine.pairs())): engine for engine in ApertiumEngine.discover()}


def test_discovers_plain_pairs_with_iso_codes_and_package_versions(engines) -> None:
    assert {("en", "es"), ("es", "en"), ("es", "fr"), ("fr", "es"), ("es", "pt"), ("es", "it")} <= set(engines)
    en_es = engines[("en", "es")]
    assert en_es.name == "apertium-en-es"
    assert en_es.mode == "eng-spa"
    version = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "apertium-eng-spa"], capture_output=True, text=True
    ).stdout
    assert en_es.version == version and version
    assert all(len(s) == 2 and len(t) == 2 for s, t in engines)  # variants such as eng-cat_valencia skipped


def test_english_to_spanish(engines) -> None:
    out = engines[("en", "es")].translate_batch(["Hello world", "I have two dogs.", "Where is the house?"], "en", "es")
    assert out[0] == "Hola Mundo"
    assert "perros" in out[1]
    assert "casa" in out[2]


def test_spanish_to_french(engines) -> None:
    [out] = engines[("es", "fr")].translate_batch(["Tengo un perro y dos gatos."], "es", "fr")
    assert "chien" in out and "chats" in out


def test_batch_is_one_process_and_equals_one_by_one(engines, monkeypatch) -> None:
    texts = [
        "I have a dog.\nIt is big.",  # a newline inside one message
        "The [cat] said <b>hi</b> & left",
        "xyzzyq is an unknown word",  # no '*' unknown-word marks
        "",
        "   ",
        "Five * four = twenty",
        "Good morning, my friend!",
    ]
    engine = engines[("en", "es")]
    one_by_one = [engine.translate_batch([text], "en", "es")[0] for text in texts]
    calls = []
    real_run = subprocess.run

    def counting_run(*args, **kwargs):
        calls.append(args[0])
        return real_run(*args, **kwargs)

    monkeypatch.setattr(subprocess, "run", counting_run)
    batched = engine.translate_batch(texts, "en", "es")
    assert len(calls) == 1
    assert batched == one_by_one
    assert batched[0].count("\n") == 1 and "perro" in batched[0]
    assert "[" in batched[1] and "<b>" in batched[1] and "&" in batched[1]
    assert "*xyzzyq" not in batched[2] and "xyzzyq" in batched[2]
    assert batched[3:5] == ["", "   "]
    assert "*" in batched[5]


def test_wrong_pair_is_an_engine_error(engines) -> None:
    from translation.engine.base import EngineError

    with pytest.raises(EngineError):
        engines[("en", "es")].translate_batch(["hi"], "es", "en")


def test_router_with_apertium_only_pivots_english_to_french_through_spanish() -> None:
    router = Router.default()
    [result] = router.translate_batch(["I would like to eat bread with my friends."], "en", "fr")
    assert result.status == "ok"
    assert result.engine.startswith("apertium-en-es@") and " > apertium-es-fr@" in result.engine
    assert "pain" in result.text and "amis" in result.text


def test_router_keeps_spans_through_apertium() -> None:
    [result] = Router.default().translate_batch(
        ["Hello @ana, the meeting is in #general at https://meet.example.com/abc 😀"], "en", "es"
    )
    for span in ("@ana", "#general", "https://meet.example.com/abc", "😀"):
        assert result.text.count(span) == 1
    assert "Hola" in result.text and "reunión" in result.text


def test_unserved_pair_is_untranslated() -> None:
    [result] = Router.default().translate_batch(["Hello"], "en", "ja")
    assert (result.status, result.text, result.reason) == ("untranslated", None, "no route from en to ja")
