"""The moderation policy: is a message flagged, and may it be hidden automatically? Pure, no Django.

A message is scored in its original form and in every translation a reader actually sees, because
translation can sharpen or soften an insult. It is flagged when any of those hostile scores reaches the room's
``flag`` threshold; the verdict names the text that triggered it (the highest score wins) so moderators see
why. Auto-hide is off unless the room opts in with an ``auto_hide`` threshold, which must not be below
``flag``: hiding is the stronger action and needs the stronger evidence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

ORIGINAL = "original"


class Scored(Protocol):
    """What the policy reads from a scored text: a SentimentPrediction, a stored result row, ..."""

    emotion: str
    hostile_score: float


@dataclass(frozen=True)
class ModerationThresholds:
    """Per-room thresholds on the hostile score (0..1)."""

    flag: float = 0.5
    auto_hide: float | None = None

    def __post_init__(self) -> None:
        for name, value in (("flag", self.flag), ("auto_hide", self.auto_hide)):
            if value is not None and not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
                raise ValueError(f"{name} threshold must be a number between 0 and 1, got {value!r}")
        if self.auto_hide is not None and self.auto_hide < self.flag:
            raise ValueError(f"auto_hide ({self.auto_hide}) must not be below flag ({self.flag})")


@dataclass(frozen=True)
class ModerationVerdict:
    """The policy's decision. ``trigger`` is ``"original"`` or the language code of a translation."""

    flagged: bool
    auto_hide: bool
    reason: str
    trigger: str | None
    score: float  # the highest hostile score seen (the trigger's when flagged)


def decide(
    original: Scored,
    translations: Mapping[str, Scored] | None = None,
    thresholds: ModerationThresholds | None = None,
) -> ModerationVerdict:
    """Decide from the original's scores and those of the translations readers see (keyed by language).

    Only the hostile score decides: an emotion alone (an angry complaint about a late train) never flags.
    Ties go to the original (it is what the author wrote). Scores must be finite and within 0..1.
    """
    thresholds = thresholds or ModerationThresholds()
    candidates = [(ORIGINAL, original)] + sorted((translations or {}).items())
    for source, scored in candidates:
        value = scored.hostile_score
        if not isinstance(value, (int, float)) or not math.isfinite(value) or not 0.0 <= value <= 1.0:
            raise ValueError(f"hostile score for {source} must be within 0..1, got {value!r}")
    # max() keeps the first of equal scores, and the original comes first.
    trigger, scored = max(candidates, key=lambda item: item[1].hostile_score)
    score = scored.hostile_score
    if score < thresholds.flag:
        return ModerationVerdict(
            flagged=False,
            auto_hide=False,
            reason=f"hostile score {score:.2f} below the room's flag threshold {thresholds.flag:.2f}",
            trigger=None,
            score=float(score),
        )
    where = "the original" if trigger == ORIGINAL else f"the {trigger} translation"
    where += f" ({scored.emotion})"
    auto_hide = thresholds.auto_hide is not None and score >= thresholds.auto_hide
    reason = f"hostile score {score:.2f} in {where} reaches the room's flag threshold {thresholds.flag:.2f}"
    if auto_hide:
        reason += f" and its auto-hide threshold {thresholds.auto_hide:.2f}"
    return ModerationVerdict(flagged=True, auto_hide=auto_hide, reason=reason, trigger=trigger, score=float(score))
