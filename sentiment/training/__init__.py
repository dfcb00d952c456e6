"""Fine-tuning pipeline for the emotion classifier (no Django): data -> evaluated, uploadable checkpoint."""

from .data import load_splits, read_sentiment_records
from .default_model import DEFAULT_CONFIG, build_default_model
from .encoder import import_e5_encoder
from .finetune import FinetuneConfig, evaluate_checkpoint, finetune_sentiment

__all__ = [
    "DEFAULT_CONFIG",
    "FinetuneConfig",
    "build_default_model",
    "evaluate_checkpoint",
    "finetune_sentiment",
    "import_e5_encoder",
    "load_splits",
    "read_sentiment_records",
]
