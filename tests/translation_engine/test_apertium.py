"""Apertium on real sentences through Debian's installed pairs (skipped where apertium is not installed)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
from pathlib import Path

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


def test_one_shot_batch_is_one_process_and_equals_one_by_one(monkeypatch) -> None:
    texts = [
        "I have a dog.\nIt is big.",  # a newline inside one message
        "The [cat] said <b>hi</b> & left",
        "xyzzyq is an unknown word",  # no '*' unknown-word marks
        "",
        "   ",
        "Five * four = twenty",
        "Good morning, my friend!",
    ]
    engine = ApertiumEngine("eng-spa", "en", "es", persistent=False)
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


CHAT = [
    "Hello world",
    "I have two dogs.",
    "Where is the house?",
    "I think we should meet tomorrow at 5, ok?",
    "lol that was sooo funny 😂",
    "I have a dog.\nIt is big.\n\nVery big!",
    "The [cat] said <b>hi</b> & left",
    "xyzzyq is an unknown word",
    "Five * four = twenty \\ or ^so^ $5 {x} a/b @you",
    "Can you send me the report before Friday?",
]
SPANISH = [
    "Vale, nos vemos mañana.",
    "Tengo un perro y dos gatos.",
    "Casi llego tarde al trabajo hoy.",
    "¿Dónde está la estación de tren?",
    "Mi hermana trabaja en una tienda grande.\nElla es feliz.",
    "Podemos hablar luego si quieres.",
    "Vale",
    "casi",
]
FRENCH = ["Je voudrais un café, s'il vous plaît.", "Où est la gare ?", "Nous avons mangé du pain avec nos amis."]


@pytest.mark.parametrize(
    ("mode", "source", "target", "texts"),
    [
        ("eng-spa", "en", "es", CHAT),
        ("spa-eng", "es", "en", SPANISH),
        ("fr-es", "fr", "es", FRENCH),
        ("spa-ita", "es", "it", SPANISH),
    ],
)
def test_running_stages_translate_exactly_as_the_apertium_script(mode, source, target, texts) -> None:
    """The long-lived stages give, for each message, what a fresh `apertium` process gives for it alone, whatever
    came before it in the stream (the HMM tagger changes its model on unseen ambiguity classes and is swapped)."""
    if not (Path("/usr/share/apertium/modes") / f"{mode}.mode").exists():
        pytest.skip(f"{mode} not installed")
    one_shot = ApertiumEngine(mode, source, target, persistent=False)
    expected = {text: one_shot.translate_batch([text], source, target)[0] for text in texts}
    streamed = ApertiumEngine(mode, source, target)
    try:
        order = texts * 2
        random.Random(7).shuffle(order)
        assert [streamed.translate_batch([text], source, target)[0] for text in order] == [
            expected[text] for text in order
        ]
        assert streamed.translate_batch(order, source, target) == [expected[text] for text in order]
    finally:
        streamed.close()


def test_running_stages_come_back_after_a_stage_is_killed() -> None:
    engine = ApertiumEngine("eng-spa", "en", "es")
    try:
        [before] = engine.translate_batch(["The house is very big."], "en", "es")
        pids = engine.stage_pids()
        assert len(pids) >= 8  # every stage is its own long-lived process
        os.kill(pids[len(pids) // 2], signal.SIGKILL)
        [after] = engine.translate_batch(["The house is very big."], "en", "es")
        assert after == before and "casa" in after
        assert set(engine.stage_pids()).isdisjoint(pids[len(pids) // 2 : len(pids) // 2 + 1])
    finally:
        engine.close()


def test_a_stage_that_cannot_run_is_an_engine_error_with_its_stderr(tmp_path, monkeypatch) -> None:
    from translation.engine.base import EngineError

    fake = tmp_path / "lt-proc"
    fake.write_text("#!/bin/sh\necho 'simulated lt-proc crash' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    engine = ApertiumEngine("eng-spa", "en", "es")
    try:
        with pytest.raises(EngineError, match="simulated lt-proc crash"):
            engine.translate_batch(["The house is very big."], "en", "es")
    finally:
        engine.close()


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
