"""A multilingual (M2M100-architecture) checkpoint through the HF engine: language tags and routing."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from translation.engine.base import PRIORITY_MULTILINGUAL_CHECKPOINT
from translation.engine.hf import Seq2SeqEngine
from translation.engine.routing import Router


@pytest.fixture(scope="module")
def m2m_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained, tiny M2M100 with a sentencepiece vocabulary (weights random: only the plumbing is tested)."""
    import sentencepiece as spm
    import torch
    from transformers import M2M100Config, M2M100ForConditionalGeneration, M2M100Tokenizer

    from translation.training.synthetic import generate_pairs
    from translation.training.tiny import train_sentencepiece

    pairs = generate_pairs(200)
    model_bytes = train_sentencepiece([s for s, _ in pairs] + [t for _, t in pairs], 300)
    processor = spm.SentencePieceProcessor(model_proto=model_bytes)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for index in range(processor.get_piece_size()):
        vocab.setdefault(processor.id_to_piece(index), len(vocab))
    with tempfile.TemporaryDirectory() as temp:
        (Path(temp) / "spm.model").write_bytes(model_bytes)
        (Path(temp) / "vocab.json").write_text(json.dumps(vocab))
        tokenizer = M2M100Tokenizer(vocab_file=str(Path(temp) / "vocab.json"), spm_file=str(Path(temp) / "spm.model"))
    size = tokenizer.encoder_size + len(tokenizer.lang_code_to_id) + tokenizer.num_madeup_words
    config = M2M100Config(
        vocab_size=size, d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64,
        pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2,
    )  # fmt: skip
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("m2m") / "tiny-m2m"
    M2M100ForConditionalGeneration(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_multilingual_engine_infers_pairs_and_ranks_below_pair_models(m2m_dir: Path) -> None:
    engine = Seq2SeqEngine.from_directory(m2m_dir, device="cpu")
    assert engine.kind == "m2m100"
    assert {("en", "es"), ("es", "en"), ("en", "ja"), ("fr", "de")} <= engine.pairs()
    assert engine.priority == PRIORITY_MULTILINGUAL_CHECKPOINT
    assert Router([engine]).route("en", "ja").label == f"tiny-m2m@{engine.version}"


def test_target_language_is_forced_and_its_tag_never_shown(m2m_dir: Path) -> None:
    engine = Seq2SeqEngine.from_directory(m2m_dir, device="cpu", pairs={("en", "es"), ("en", "fr")})
    assert engine.pairs() == {("en", "es"), ("en", "fr")}
    tokenizer = engine.tokenizer
    for target in ("es", "fr"):
        engine.tokenizer.src_lang = "en"
        encoded = tokenizer(["hello Ana"], return_tensors="pt")
        src_lang, forced = engine._language_settings("en", target)
        assert (src_lang, forced) == ("en", tokenizer.get_lang_id(target))
        assert encoded["input_ids"][0, 0].item() == tokenizer.get_lang_id("en")
        [output] = engine.translate_batch(["hello Ana"], "en", target)
        assert f"__{target}__" not in output and "__en__" not in output
