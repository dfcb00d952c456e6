"""Protected spans: found, masked, restored exactly once, and never dropped when an engine loses one."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from translation.engine.spans import PlaceholderLost, protect, restore, translate_protected


@pytest.mark.parametrize(
    ("text", "kind", "span"),
    [
        ("read https://example.com/a?b=1&c=2.", "url", "https://example.com/a?b=1&c=2"),
        ("see (www.example.org/x)", "url", "www.example.org/x"),
        ("ping @ana.maria, now", "mention", "@ana.maria"),
        ("mail ana@example.com now", "email", "ana@example.com"),
        ("join #dev-team!", "room", "#dev-team"),
        ("run `pip install x` first", "inline_code", "`pip install x`"),
        ("code:\n```py\nprint('hi')\n```\ndone", "code_block", "```py\nprint('hi')\n```"),
        ("great 👍🏽!", "emoji", "👍🏽"),
        ("family 👨‍👩‍👧 here", "emoji", "👨‍👩‍👧"),
        ("go 🇪🇸🇫🇷", "emoji", "🇪🇸🇫🇷"),
    ],
)
def test_each_span_kind(text: str, kind: str, span: str) -> None:
    masked = protect(text)
    assert [(s.kind, s.original) for s in masked.spans] == [(kind, span)]
    assert span not in masked.text
    assert restore(masked.text, masked) == text


def test_not_spans() -> None:
    assert protect("issue #42 costs 5 € and C# is fine").spans == ()
    assert protect("no email@ here, nor a bare @").spans == ()


def test_code_wins_over_what_is_inside_it() -> None:
    masked = protect("try `curl https://x.io @me` ok")
    assert [s.kind for s in masked.spans] == ["inline_code"]


def test_do_not_translate_terms_whole_word_any_case_longest_first() -> None:
    masked = protect(
        "Bridge Chat and bridge, but not bridges; New York Times", ["bridge", "New York", "New York Times"]
    )
    assert [s.original for s in masked.spans] == ["Bridge", "bridge", "New York Times"]


def test_placeholders_avoid_numbers_in_the_text() -> None:
    masked = protect("call 7100 or 7101 @bob")
    [span] = masked.spans
    assert span.token not in ("7100", "7101")
    assert restore(masked.text.replace(span.token, span.token), masked) == "call 7100 or 7101 @bob"


def test_glued_span_gets_room_and_the_room_is_removed() -> None:
    masked = protect("ok😀great")
    assert masked.text == f"ok {masked.spans[0].token} great"
    assert restore(f"vale {masked.spans[0].token} genial", masked) == "vale😀genial"


def test_restore_rejects_lost_and_duplicated_placeholders() -> None:
    masked = protect("hi @ana and @bob")
    first, second = (s.token for s in masked.spans)
    with pytest.raises(PlaceholderLost):
        restore(f"hola {first} y", masked)
    with pytest.raises(PlaceholderLost):
        restore(f"hola {first} y {second} {second}", masked)


def test_restore_inserts_span_text_literally() -> None:
    masked = protect(r"path `C:\new\g<0>` here")
    assert restore(masked.text, masked) == r"path `C:\new\g<0>` here"


def test_fallback_translates_segments_around_spans() -> None:
    calls: list[list[str]] = []

    def lossy(batch: list[str]) -> list[str]:
        calls.append(batch)
        # An engine that throws digits away (a lost placeholder) and upper-cases words.
        return ["".join(ch for ch in text if not ch.isdigit()).upper() for text in batch]

    [result] = translate_protected(["hello @ana, see https://x.io/p now 😀"], lossy)
    assert result == "HELLO @ana, SEE https://x.io/p NOW 😀"
    assert len(calls) == 2 and calls[1] == ["hello", ", see", "now"]


# --- property: whatever the text and whatever the engine does, every span comes back exactly once -------------

SPANS = ["https://ex.am/ple?q=1", "@ana", "@bob_2", "#general", "`x = 1`", "😀", "👍🏽", "Bridge", "a.b@mail.org"]
WORDS = ["hello", "world", "the", "cat", "is", "here", "ok", "and", "now", "tomorrow", "3", "12:30", ",", ".", "?"]


@st.composite
def messages(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.one_of(st.sampled_from(WORDS), st.sampled_from(SPANS)), min_size=1, max_size=14))
    return " ".join(parts)


def lossy_engine(seed: int):
    rng = random.Random(seed)

    def translate(batch: list[str]) -> list[str]:
        outputs = []
        for text in batch:
            words = text.split(" ")
            action = rng.choice(["keep", "drop_digit_word", "duplicate_digit_word", "shuffle"])
            digit_words = [i for i, word in enumerate(words) if word.isdigit()]
            if action == "drop_digit_word" and digit_words:
                del words[rng.choice(digit_words)]
            elif action == "duplicate_digit_word" and digit_words:
                words.append(words[rng.choice(digit_words)])
            elif action == "shuffle":
                rng.shuffle(words)
            outputs.append(" ".join(word.upper() if word.isalpha() else word for word in words))
        return outputs

    return translate


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(messages(), min_size=1, max_size=5), seed=st.integers(0, 10_000))
def test_every_span_survives_exactly_as_often_as_written(texts: list[str], seed: int) -> None:
    results = translate_protected(texts, lossy_engine(seed), ["Bridge"])
    assert len(results) == len(texts)
    for text, result in zip(texts, results, strict=True):
        # The engine upper-cases every word it sees, so an exact-case span in the output came from restore.
        for span in SPANS:
            assert result.count(span) == text.count(span), (text, result)


@given(text=messages())
def test_protect_restore_round_trip(text: str) -> None:
    masked = protect(text, ["Bridge"])
    assert restore(masked.text, masked) == text
    assert translate_protected([text], lambda batch: batch, ["Bridge"]) == [text]
