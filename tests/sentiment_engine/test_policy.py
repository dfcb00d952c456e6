"""The moderation policy over the whole label x score x threshold grid, and its edge cases."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from sentiment.engine.labels import EMOTIONS
from sentiment.policy import ORIGINAL, ModerationThresholds, decide


@dataclass(frozen=True)
class Scores:
    emotion: str
    hostile_score: float


SCORES = (0.0, 0.1, 0.3, 0.49, 0.5, 0.51, 0.7, 0.89, 0.9, 0.95, 1.0)
FLAGS = (0.0, 0.3, 0.5, 0.7, 0.9, 1.0)
AUTO_HIDE = (None, 0.9, 0.95, 1.0)
# Where the hostile text is: the original alone, a translation alone, or both with different scores.
PLACEMENTS = ("original", "translation", "both")


def _case(emotion: str, score: float, placement: str) -> tuple[Scores, dict[str, Scores]]:
    calm = Scores("neutral", 0.0)
    if placement == "original":
        return Scores(emotion, score), {"en": calm, "fr": calm}
    if placement == "translation":
        return calm, {"en": calm, "fr": Scores(emotion, score)}
    return Scores(emotion, score / 2), {"en": Scores(emotion, score), "fr": calm}


GRID = [
    (emotion, score, flag, auto_hide, placement)
    for emotion, score, flag, auto_hide, placement in itertools.product(EMOTIONS, SCORES, FLAGS, AUTO_HIDE, PLACEMENTS)
    if auto_hide is None or auto_hide >= flag
]


@pytest.mark.parametrize(("emotion", "score", "flag", "auto_hide", "placement"), GRID)
def test_grid(emotion: str, score: float, flag: float, auto_hide: float | None, placement: str) -> None:
    original, translations = _case(emotion, score, placement)
    verdict = decide(original, translations, ModerationThresholds(flag=flag, auto_hide=auto_hide))

    # The emotion never matters, only the highest hostile score among the texts readers see.
    assert verdict.flagged is (score >= flag)
    assert verdict.score == pytest.approx(score)
    assert verdict.auto_hide is (verdict.flagged and auto_hide is not None and score >= auto_hide)
    if not verdict.flagged:
        assert verdict.trigger is None
        assert "below" in verdict.reason
        return
    # Ties go to the original: at score 0 every text ties.
    if placement == "original" or score == 0.0:
        expected_trigger = ORIGINAL
    else:
        expected_trigger = "fr" if placement == "translation" else "en"
    trigger_emotion = "neutral" if placement == "translation" and score == 0.0 else emotion
    assert verdict.trigger == expected_trigger
    assert f"({trigger_emotion})" in verdict.reason
    assert ("auto-hide" in verdict.reason) is verdict.auto_hide


def test_grid_covers_every_emotion_and_threshold() -> None:
    assert {case[0] for case in GRID} == set(EMOTIONS)
    assert len(GRID) > 1000


@pytest.mark.parametrize("emotion", EMOTIONS)
def test_emotion_alone_never_flags(emotion: str) -> None:
    verdict = decide(Scores(emotion, 0.2), {"de": Scores(emotion, 0.2)})
    assert not verdict.flagged


def test_translation_sharpening_an_insult_flags_with_the_translation_as_trigger() -> None:
    verdict = decide(Scores("anger", 0.3), {"es": Scores("anger", 0.85), "de": Scores("neutral", 0.1)})
    assert verdict.flagged and verdict.trigger == "es" and verdict.score == pytest.approx(0.85)
    assert "es translation" in verdict.reason


def test_translation_softening_does_not_unflag_the_original() -> None:
    verdict = decide(Scores("disgust", 0.8), {"ja": Scores("neutral", 0.05)})
    assert verdict.flagged and verdict.trigger == ORIGINAL


def test_tie_goes_to_the_original() -> None:
    verdict = decide(Scores("anger", 0.7), {"en": Scores("anger", 0.7)})
    assert verdict.trigger == ORIGINAL


def test_no_translations_and_default_thresholds() -> None:
    assert decide(Scores("anger", 0.5)).flagged
    assert not decide(Scores("anger", 0.4999)).flagged
    assert not decide(Scores("anger", 1.0)).auto_hide  # auto-hide is opt-in


@pytest.mark.parametrize("bad", [-0.01, 1.01, float("nan"), float("inf"), "0.5", None])
def test_out_of_range_scores_are_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        decide(Scores("anger", bad))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        decide(Scores("anger", 0.1), {"fr": Scores("anger", bad)})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("flag", "auto_hide"), [(-0.1, None), (1.5, None), (0.5, 1.2), (0.8, 0.5), (float("nan"), None)]
)
def test_invalid_thresholds_are_refused(flag: float, auto_hide: float | None) -> None:
    with pytest.raises(ValueError):
        ModerationThresholds(flag=flag, auto_hide=auto_hide)
