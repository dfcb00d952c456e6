"""Protected spans: parts of a message no engine may touch.

URLs, e-mail addresses, @mentions, #room references, inline `code` and ``` blocks, emoji and a caller-given
do-not-translate list are swapped for placeholders before the engine and put back after, each exactly once.

Placeholders are bare 4-digit numbers: numbers are what both Apertium and neural MT copy through unchanged
(checked: ``__0__``-style tokens survive Apertium but a sentencepiece model splits and mangles them). The
numbers are chosen so they never occur in the message itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import regex

_PLACEHOLDER_BASE = 7100
_PATTERNS: tuple[tuple[str, regex.Pattern[str]], ...] = (
    ("code_block", regex.compile(r"```.*?(?:```|\Z)", regex.DOTALL)),
    ("inline_code", regex.compile(r"`[^`\n]+`")),
    ("url", regex.compile(r"(?:\bhttps?://|\bwww\.)[^\s<>\"']+?(?=[.,;:!?)\]}'\"]*(?:\s|$))", regex.IGNORECASE)),
    ("email", regex.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    ("mention", regex.compile(r"(?<![\w@])@\w(?:[\w.-]*\w)?")),
    ("room", regex.compile(r"(?<![\w#&])#[^\W\d_][\w-]*")),
    (
        "emoji",
        # A run of pictographs with their modifiers, variation selectors, ZWJ joins and flag pairs.
        regex.compile(
            r"(?:\p{Extended_Pictographic}|\p{Regional_Indicator})"
            r"(?:[\p{Emoji_Modifier}\uFE0F\u20E3\u200D\s]*(?:\p{Extended_Pictographic}|\p{Regional_Indicator}))*"
            r"[\p{Emoji_Modifier}\uFE0F]*"
        ),
    ),
)


class PlaceholderLost(ValueError):
    """The engine output does not hold every placeholder exactly once."""


@dataclass(frozen=True)
class Span:
    kind: str  # url, email, mention, room, inline_code, code_block, emoji, dnt
    original: str
    token: str
    pad_left: bool  # a space was added before the token (the span touched a word) and is removed on restore
    pad_right: bool


@dataclass(frozen=True)
class Masked:
    """A message with its spans replaced; ``segments`` are the texts between spans (len(spans) + 1)."""

    text: str
    spans: tuple[Span, ...]
    segments: tuple[str, ...]

    @property
    def has_words(self) -> bool:
        """Whether anything is left to translate once the spans are out."""
        return any(regex.search(r"\p{L}", segment) for segment in self.segments)


def _find_spans(text: str, do_not_translate: Iterable[str]) -> list[tuple[int, int, str]]:
    """Non-overlapping (start, end, kind) spans; earlier kinds win a conflict (a URL inside code stays code)."""
    found: list[tuple[int, int, str]] = []
    taken = [False] * len(text)

    def claim(start: int, end: int, kind: str) -> None:
        if start < end and not any(taken[start:end]):
            found.append((start, end, kind))
            taken[start:end] = [True] * (end - start)

    for kind, pattern in _PATTERNS[:-1]:
        for match in pattern.finditer(text):
            claim(match.start(), match.end(), kind)
    # Longest terms first so "New York Times" wins over "New York"; whole words only, any case.
    terms = sorted({term.strip() for term in do_not_translate if term and term.strip()}, key=len, reverse=True)
    for term in terms:
        for match in regex.finditer(rf"(?<!\w){regex.escape(term)}(?!\w)", text, flags=regex.IGNORECASE):
            claim(match.start(), match.end(), "dnt")
    for match in _PATTERNS[-1][1].finditer(text):
        claim(match.start(), match.end(), "emoji")
    return sorted(found)


def _free_tokens(text: str, count: int) -> list[str]:
    """``count`` distinct numbers that do not occur in ``text`` (so restore cannot confuse them)."""
    tokens: list[str] = []
    candidate = _PLACEHOLDER_BASE
    while len(tokens) < count:
        token = str(candidate)
        if token not in text:
            tokens.append(token)
        candidate += 1
    return tokens


def protect(text: str, do_not_translate: Iterable[str] = ()) -> Masked:
    """Replace protected spans with placeholders."""
    found = _find_spans(text, do_not_translate)
    tokens = _free_tokens(text, len(found))
    pieces: list[str] = []
    spans: list[Span] = []
    segments: list[str] = []
    cursor = 0
    for (start, end, kind), token in zip(found, tokens, strict=True):
        before = text[cursor:start]
        segments.append(before)
        # Glued to a word ("see:@bob", "ok😀") the token would fuse into one unknown word; give it room.
        pad_left = start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_")
        pad_right = end < len(text) and (text[end].isalnum() or text[end] == "_")
        pieces.append(before)
        pieces.append((" " if pad_left else "") + token + (" " if pad_right else ""))
        spans.append(Span(kind, text[start:end], token, pad_left, pad_right))
        cursor = end
    pieces.append(text[cursor:])
    segments.append(text[cursor:])
    return Masked(text="".join(pieces), spans=tuple(spans), segments=tuple(segments))


def restore(translated: str, masked: Masked) -> str:
    """Put the spans back into an engine's output; PlaceholderLost unless each token is there exactly once."""
    result = translated
    for span in masked.spans:
        pattern = regex.compile(rf"(?<!\d){span.token}(?!\d)")
        hits = pattern.findall(result)
        if len(hits) != 1:
            raise PlaceholderLost(f"placeholder {span.token} ({span.kind}) found {len(hits)} times")
        left = r"[ \t]?" if span.pad_left else ""
        right = r"[ \t]?" if span.pad_right else ""
        # A function replacement: the span text must never be read as a regex template (backslashes, \g<0>).
        result = regex.sub(rf"{left}(?<!\d){span.token}(?!\d){right}", lambda _m, s=span: s.original, result, 1)
    return result


def _split_core(segment: str) -> tuple[str, str, str]:
    """(leading whitespace, core, trailing whitespace): engines trim, the message layout must not change."""
    core = segment.strip()
    if not core:
        return segment, "", ""
    start = segment.index(core)
    return segment[:start], core, segment[start + len(core) :]


def translate_protected(
    texts: Sequence[str],
    translate_fn: Callable[[list[str]], list[str]],
    do_not_translate: Iterable[str] = (),
) -> list[str]:
    """Translate ``texts`` with ``translate_fn`` (one batch call) while keeping protected spans intact.

    When the engine drops or duplicates a placeholder in some text, that text's plain segments between the
    spans are translated on their own (a second batch call for all such texts) and re-joined around the
    untouched spans, so no content is ever lost.
    """
    dnt = tuple(do_not_translate)
    masked = [protect(text, dnt) for text in texts]
    results: list[str | None] = [None] * len(texts)
    send = [index for index, item in enumerate(masked) if item.has_words]
    for index, item in enumerate(masked):
        if not item.has_words:
            results[index] = texts[index]  # only spans, numbers and punctuation: nothing to translate
    if send:
        outputs = translate_fn([masked[index].text for index in send])
        if len(outputs) != len(send):
            raise ValueError(f"engine returned {len(outputs)} texts for {len(send)}")
        lost: list[int] = []
        for index, output in zip(send, outputs, strict=True):
            try:
                results[index] = restore(output, masked[index])
            except PlaceholderLost:
                lost.append(index)
        if lost:
            _translate_segments(lost, masked, results, translate_fn)
    return [result if result is not None else "" for result in results]


def _translate_segments(
    indices: list[int],
    masked: list[Masked],
    results: list[str | None],
    translate_fn: Callable[[list[str]], list[str]],
) -> None:
    cores: list[str] = []
    layout: list[tuple[int, int, str, str]] = []  # (text index, segment index, lead, trail)
    for index in indices:
        for position, segment in enumerate(masked[index].segments):
            lead, core, trail = _split_core(segment)
            if core and regex.search(r"\p{L}", core):
                layout.append((index, position, lead, trail))
                cores.append(core)
    outputs = translate_fn(cores) if cores else []
    if len(outputs) != len(cores):
        raise ValueError(f"engine returned {len(outputs)} texts for {len(cores)}")
    translated = iter(outputs)
    pending = {(index, position): (lead, trail) for index, position, lead, trail in layout}
    for index in indices:
        item = masked[index]
        parts: list[str] = []
        for position, segment in enumerate(item.segments):
            if (index, position) in pending:
                lead, trail = pending[(index, position)]
                parts.append(lead + next(translated) + trail)
            else:
                parts.append(segment)
            if position < len(item.spans):
                parts.append(item.spans[position].original)
        results[index] = "".join(parts)
