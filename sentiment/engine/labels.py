"""The label scheme shared by the engine, the training pipeline and the moderation policy.

A checkpoint is an ordinary single-head sequence classifier. Its labels are the seven emotions, plus a
"hostile" variant of each emotion that occurs with hostility in the training data ("anger+hostile",
"disgust+hostile", ...). Hostility is thus a property of the message on top of its emotion (an insult can be
angry, disgusted or mocking-joyful), and one softmax yields both: the emotion's probability is the sum over
its variants, the hostile score the sum over the hostile variants.
"""

from __future__ import annotations

EMOTIONS: tuple[str, ...] = ("anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral")
POLARITIES: tuple[str, ...] = ("positive", "neutral", "negative")
# Polarity follows the emotion so that the cue a reader sees never contradicts the emotion shown.
POLARITY_OF: dict[str, str] = {
    "anger": "negative",
    "disgust": "negative",
    "fear": "negative",
    "sadness": "negative",
    "joy": "positive",
    "surprise": "neutral",
    "neutral": "neutral",
}
HOSTILE_SUFFIX = "+hostile"


def label_name(emotion: str, hostile: bool) -> str:
    """The classifier label for an (emotion, hostile) pair."""
    if emotion not in POLARITY_OF:
        raise ValueError(f"unknown emotion {emotion!r} (known: {', '.join(EMOTIONS)})")
    return emotion + HOSTILE_SUFFIX if hostile else emotion


def parse_label(label: str) -> tuple[str, bool]:
    """Inverse of :func:`label_name`; raises ValueError for a label outside the scheme."""
    text = label.strip().lower()
    hostile = text.endswith(HOSTILE_SUFFIX)
    emotion = text.removesuffix(HOSTILE_SUFFIX) if hostile else text
    if emotion not in POLARITY_OF:
        raise ValueError(
            f"label {label!r} is not an emotion or emotion{HOSTILE_SUFFIX} (emotions: {', '.join(EMOTIONS)})"
        )
    return emotion, hostile


def ordered_labels(pairs: set[tuple[str, bool]]) -> list[str]:
    """Stable label order for (emotion, hostile) pairs: plain emotions first, then hostile variants."""
    return [label_name(e, h) for h in (False, True) for e in EMOTIONS if (e, h) in pairs]
