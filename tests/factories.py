"""Small real artefacts the tests build themselves (never downloaded): tiny checkpoints and their archives."""

from __future__ import annotations

import zipfile
from pathlib import Path

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "you", "are", "idiot", "great", "day", "!", "?"]


def tiny_sentiment_checkpoint(out_dir: Path, seed: int = 0) -> Path:
    """A randomly initialised BERT classifier with the emotion label scheme, saved as safetensors + tokenizer."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    from sentiment.engine.labels import EMOTIONS, ordered_labels

    torch.manual_seed(seed)
    labels = ordered_labels({(e, False) for e in EMOTIONS} | {("anger", True), ("disgust", True)})
    config = BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    BertForSequenceClassification(config).save_pretrained(out_dir, safe_serialization=True)
    (out_dir / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    BertTokenizerFast(vocab_file=str(out_dir / "vocab.txt"), do_lower_case=True).save_pretrained(out_dir)
    return out_dir


def zip_directory(directory: Path, archive: Path, compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(archive, "w", compression=compression) as bundle:
        for path in sorted(directory.iterdir()):
            if path.is_file():
                bundle.write(path, arcname=path.name)
    return archive


def finetune_tiny_translation(product, out_dir: Path) -> Path:
    """`manage.py finetune translation --init tiny` on the project's en-es chat set, cut short (40 steps, ~15 s):
    a real output of the pipeline, for the registry's tests."""
    data = Path(__file__).resolve().parent.parent / "data" / "translation" / "chat-en-es.tsv"
    product.manage(
        "finetune", "translation", "--data", str(data), "--init", "tiny", "--source", "en", "--target", "es",
        "--out", str(out_dir), "--max-steps", "40", "--eval-steps", "40", "--threads", "1", "--vocab-size", "400",
    )  # fmt: skip
    return out_dir
