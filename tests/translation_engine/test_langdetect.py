"""Language detection: lingua restricted to the served languages, profile fallback for short/uncertain text."""

from __future__ import annotations

import pytest

from translation.engine.langdetect import _detector, detect_language


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Where is the train station, please?", "en"),
        ("¿Dónde está la estación de tren, por favor?", "es"),
        ("Je voudrais réserver une table pour ce soir.", "fr"),
        ("Ich möchte heute Abend ins Kino gehen.", "de"),
        ("Eu gostaria de ir à praia amanhã de manhã.", "pt"),
        ("Vorrei prenotare un tavolo per stasera.", "it"),
        ("今天天气很好，我们去公园吧", "zh"),
        ("今日はとても良い天気ですね", "ja"),
    ],
)
def test_detects_each_served_language(text: str, language: str) -> None:
    detection = detect_language(text, fallback="en" if language != "en" else "es")
    assert detection.language == language
    assert detection.method == "detected"
    assert detection.confidence >= 0.5


@pytest.mark.parametrize("text", ["ok", "jaja", "merci!", "hola amigo", "sí 👍", "lol 😂😂", ""])
def test_short_messages_use_the_profile_language(text: str) -> None:
    assert detect_language(text, fallback="fr") == detect_language(text, fallback="fr")
    detection = detect_language(text, fallback="fr")
    assert (detection.language, detection.method, detection.confidence) == ("fr", "profile", 0.0)


def test_spans_do_not_count_as_words() -> None:
    text = "https://example.com/un/chemin/tres/long @marie_claire #general `git status`"
    assert detect_language(text, fallback="es").method == "profile"


def test_only_served_languages_can_be_detected() -> None:
    detection = detect_language("Ich möchte heute Abend ins Kino gehen.", served=("en", "es", "fr"), fallback="en")
    assert detection.language in {"en", "es", "fr"}


def test_low_confidence_falls_back_to_profile() -> None:
    # Mixed English/Spanish: whatever lingua leans to, a threshold above its confidence hands it to the profile.
    text = "I think que es muy good para everybody hoy"
    relaxed = detect_language(text, fallback="pt", min_confidence=0.0)
    assert relaxed.language in {"en", "es"} and relaxed.method == "detected"
    strict = detect_language(text, fallback="pt", min_confidence=relaxed.confidence + 0.01)
    assert (strict.language, strict.method) == ("pt", "profile")


def test_mixed_language_with_a_dominant_one() -> None:
    text = "Mañana vamos a la playa con mis amigos, ok? See you"
    assert detect_language(text, fallback="en").language == "es"


def test_detector_built_once_per_language_set() -> None:
    detect_language("Where is the train station, please?", served=("en", "es"), fallback="en")
    before = _detector.cache_info().hits
    detect_language("¿Dónde está la estación de tren, por favor?", served=("es", "en"), fallback="en")
    assert _detector.cache_info().hits == before + 1
