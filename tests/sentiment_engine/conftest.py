"""Fixtures for the sentiment engine and training tests: a small labeled sample and a tiny random BERT.

The tiny base model is built here (random weights, a WordPiece tokenizer trained on the sample), so no test
downloads or needs the real encoder.
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from sentiment.engine.labels import EMOTIONS

# Words that carry each label, in a few languages; the sample is easy on purpose: a tiny model must learn it.
CUES = {
    "anger": ["furious", "so mad", "wütend", "enfadado", "furieux"],
    "disgust": ["gross", "yuck", "eklig", "asco", "dégoûtant"],
    "fear": ["scared", "terrified", "Angst", "miedo", "peur"],
    "joy": ["happy", "awesome", "froh", "feliz", "génial"],
    "sadness": ["sad", "crying", "traurig", "triste", "déprimé"],
    "surprise": ["wow", "no way", "unglaublich", "sorpresa", "incroyable"],
    "neutral": ["meeting at", "the file", "Termin", "reunión", "le fichier"],
}
HOSTILE_CUES = ["you idiot", "shut up moron", "du Idiot", "imbécil", "espèce de crétin"]
LANGUAGES = ["en", "en", "de", "es", "fr"]  # matches the cue order above
TAILS = ["today", "right now", "lol", "again", "!!", "tbh", "this morning", "😅"]


def sample_rows(per_label: int = 12, hostile_per_emotion: int = 8, seed: int = 0) -> list[dict[str, str]]:
    """Rows with text/emotion/language/hostile/split; anger and disgust also come in hostile variants."""
    rng = random.Random(seed)
    rows = []
    for emotion in EMOTIONS:
        variants = [(False, per_label)] + ([(True, hostile_per_emotion)] if emotion in ("anger", "disgust") else [])
        for hostile, count in variants:
            for index in range(count):
                cue_index = index % len(CUES[emotion])
                text = f"{CUES[emotion][cue_index]} {rng.choice(TAILS)}"
                if hostile:
                    text = f"{HOSTILE_CUES[index % len(HOSTILE_CUES)]}, {text}"
                rows.append(
                    {
                        "text": text,
                        "emotion": emotion,
                        "language": LANGUAGES[cue_index],
                        "hostile": "1" if hostile else "0",
                        "split": "test" if index % 4 == 3 else "train",
                    }
                )
    return rows


def write_tsv(path: Path, rows: list[dict[str, str]], columns: tuple[str, ...] | None = None) -> Path:
    columns = columns or ("text", "emotion", "language", "hostile", "split")
    lines = ["\t".join(columns)] + ["\t".join(row[c] for c in columns) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="package", autouse=True)
def one_torch_thread():
    """Tiny models gain nothing from threads, and on a busy 2-core machine thread hand-offs cost a lot."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def sample_tsv(tmp_path: Path) -> Path:
    return write_tsv(tmp_path / "sample.tsv", sample_rows())


def build_tiny_base(directory: Path, texts: list[str]) -> Path:
    """A random 2-layer BERT (hidden 64) with a WordPiece tokenizer trained on ``texts``, saved as HF files."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=400, special_tokens=specials))
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", backend.token_to_id("[CLS]")), ("[SEP]", backend.token_to_id("[SEP]"))],
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=128,
    )
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=backend.get_vocab_size(),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        initializer_range=0.1,  # BERT's 0.02 leaves a tiny random model learning very slowly
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
    )
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts = [row["text"] for row in sample_rows()] + list(itertools.chain(*CUES.values())) + HOSTILE_CUES
    return build_tiny_base(tmp_path_factory.mktemp("tiny-base"), texts)


# Fast settings for the tiny model: it learns the sample in a few seconds.
TINY_TRAINING = {
    "epochs": 12.0,
    "learning_rate": 2e-3,
    "batch_size": 8,
    "warmup_ratio": 0.0,
    "dropout": 0.0,
    "freeze": "none",
    "early_stopping_patience": 50,
    "group_by_length": False,
}


@pytest.fixture(scope="session")
def tiny_trained(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One fine-tune of the tiny base on the sample, shared by the tests that only read its output."""
    from sentiment.training import FinetuneConfig, finetune_sentiment

    work = tmp_path_factory.mktemp("tiny-trained")
    data = write_tsv(work / "sample.tsv", sample_rows())
    metrics = finetune_sentiment(
        data, tiny_base, work / "model", config=FinetuneConfig(**TINY_TRAINING), progress=False, log=lambda _: None
    )
    return work / "model", metrics
