"""Source-language detection for messages, restricted to the languages a deployment serves.

Chat messages are short ("ok", "jaja", "merci!"): no statistical detector is trustworthy on those, so short
text or a low-confidence guess falls back to the author's profile language.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import regex

from translation.engine.spans import protect

DEFAULT_SERVED = ("en", "es", "fr", "de", "pt", "it", "zh", "ja")
MIN_WORDS = 3
MIN_LETTERS = 12
MIN_CONFIDENCE = 0.5

METHOD_DETECTED = "detected"
METHOD_PROFILE = "profile"

_CJK = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]")
_LETTER = regex.compile(r"\p{L}")
_WORD = regex.compile(r"\p{L}[\p{L}\p{M}'’-]*")
_build_lock = threading.Lock()


@dataclass(frozen=True)
class Detection:
    language: str
    confidence: float  # the detector's confidence in ``language``; 0.0 when it was not consulted
    method: str  # "detected" | "profile"


@functools.lru_cache(maxsize=8)
def _detector(languages: frozenset[str]):  # noqa: ANN202 (lingua type)
    from lingua import IsoCode639_1, LanguageDetectorBuilder

    codes = []
    for code in sorted(languages):
        try:
            codes.append(IsoCode639_1.from_str(code))
        except ValueError:
            continue  # a served language lingua does not know: it can only come from the profile
    if len(codes) < 2:
        return None
    return LanguageDetectorBuilder.from_iso_codes_639_1(*codes).build()


def _get_detector(languages: frozenset[str]):  # noqa: ANN202
    # Building loads language models (slow, memory-heavy): make concurrent first calls wait for one build.
    with _build_lock:
        return _detector(languages)


def _is_short(text: str) -> bool:
    cjk = len(_CJK.findall(text))
    letters = len(_LETTER.findall(text)) - cjk
    words = len(_WORD.findall(_CJK.sub(" ", text))) + cjk // 2  # ~2 CJK characters per word
    return words < MIN_WORDS or letters + 4 * cjk < MIN_LETTERS


def detect_language(
    text: str,
    served: Sequence[str] = DEFAULT_SERVED,
    fallback: str = "en",
    *,
    min_confidence: float = MIN_CONFIDENCE,
) -> Detection:
    """Detect ``text``'s language among ``served``; short or uncertain text gives ``fallback`` (method "profile")."""
    # URLs, mentions, code and emoji say nothing about the language the person writes in.
    masked = protect(text)
    plain = " ".join(segment for segment in masked.segments if segment.strip())
    if _is_short(plain):
        return Detection(fallback, 0.0, METHOD_PROFILE)
    detector = _get_detector(frozenset(served))
    if detector is None:
        return Detection(fallback, 0.0, METHOD_PROFILE)
    values = detector.compute_language_confidence_values(plain)
    if not values:
        return Detection(fallback, 0.0, METHOD_PROFILE)
    best = values[0]
    language = best.language.iso_code_639_1.name.lower()
    if best.value < min_confidence:
        profile_confidence = next(
            (item.value for item in values if item.language.iso_code_639_1.name.lower() == fallback), 0.0
        )
        return Detection(fallback, float(profile_confidence), METHOD_PROFILE)
    return Detection(language, float(best.value), METHOD_DETECTED)
