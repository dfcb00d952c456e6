"""Sentiment/emotion inference (no Django): ``SentimentEngine`` over a fine-tuned HF checkpoint."""

from .engine import SentimentEngine, SentimentPrediction
from .labels import EMOTIONS, HOSTILE_SUFFIX, POLARITIES, POLARITY_OF, label_name, parse_label

__all__ = [
    "EMOTIONS",
    "HOSTILE_SUFFIX",
    "POLARITIES",
    "POLARITY_OF",
    "SentimentEngine",
    "SentimentPrediction",
    "label_name",
    "parse_label",
]
