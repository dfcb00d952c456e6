"""``--init tiny``: a small Marian-architecture model and a sentencepiece tokenizer trained on the data.

The layout follows Helsinki-NLP's opus-mt checkpoints (MarianTokenizer with source.spm/target.spm and a
vocab.json whose LAST entry is ``<pad>``, which is also the decoder start token), so the checkpoint reloads
with AutoTokenizer/AutoModelForSeq2SeqLM and converts with CTranslate2's Marian loader unchanged.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TinyConfig:
    vocab_size: int = 1000
    d_model: int = 128
    layers: int = 2
    heads: int = 4
    ffn_dim: int = 256
    dropout: float = 0.1
    max_positions: int = 256


def train_sentencepiece(texts: Sequence[str], vocab_size: int, seed: int = 13) -> bytes:
    """A unigram sentencepiece model shared by both languages (ids: 0 ``</s>``, 1 ``<unk>``, as Marian)."""
    import sentencepiece as spm

    del seed  # sentencepiece training is deterministic for a fixed input order
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=model,
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,  # keep every accented letter of a small corpus
        hard_vocab_limit=False,  # a small corpus may not support the requested size: take what it gives
        eos_id=0,
        unk_id=1,
        bos_id=-1,
        pad_id=-1,  # <pad> is appended after the pieces, Marian style
        split_digits=True,  # numbers (and span placeholders) are copied digit by digit
        minloglevel=2,
        num_threads=1,
    )
    return model.getvalue()


def build_tiny_tokenizer(texts: Sequence[str], vocab_size: int = 1000):  # noqa: ANN201 (MarianTokenizer)
    """Train the tokenizer on ``texts`` (both sides) and return a MarianTokenizer."""
    import sentencepiece as spm
    from transformers import MarianTokenizer

    model_bytes = train_sentencepiece(texts, vocab_size)
    processor = spm.SentencePieceProcessor(model_proto=model_bytes)
    vocab = {processor.id_to_piece(index): index for index in range(processor.get_piece_size())}
    vocab["<pad>"] = len(vocab)
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        (folder / "source.spm").write_bytes(model_bytes)
        (folder / "target.spm").write_bytes(model_bytes)
        (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        # The tokenizer reads its files eagerly; the temp dir can go once it is built.
        return MarianTokenizer(
            source_spm=str(folder / "source.spm"),
            target_spm=str(folder / "target.spm"),
            vocab=str(folder / "vocab.json"),
        )


def build_tiny_model(tokenizer, config: TinyConfig = TinyConfig(), seed: int = 13):  # noqa: ANN001, ANN201
    """A freshly initialised MarianMTModel sized for ``tokenizer``."""
    import torch
    from transformers import GenerationConfig, MarianConfig, MarianMTModel

    vocab_size = len(tokenizer)
    pad_id = tokenizer.pad_token_id
    marian_config = MarianConfig(
        vocab_size=vocab_size,
        decoder_vocab_size=vocab_size,
        d_model=config.d_model,
        encoder_layers=config.layers,
        decoder_layers=config.layers,
        encoder_attention_heads=config.heads,
        decoder_attention_heads=config.heads,
        encoder_ffn_dim=config.ffn_dim,
        decoder_ffn_dim=config.ffn_dim,
        max_position_embeddings=config.max_positions,
        dropout=config.dropout,
        pad_token_id=pad_id,
        decoder_start_token_id=pad_id,
        eos_token_id=tokenizer.eos_token_id,
        forced_eos_token_id=tokenizer.eos_token_id,
        scale_embedding=True,
    )
    torch.manual_seed(seed)
    model = MarianMTModel(marian_config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=pad_id,
        pad_token_id=pad_id,
        eos_token_id=tokenizer.eos_token_id,
        forced_eos_token_id=tokenizer.eos_token_id,
        # Never generate <pad>: CTranslate2 drops it from the vocabulary, and outputs must match.
        bad_words_ids=[[pad_id]],
        num_beams=1,
    )
    return model
