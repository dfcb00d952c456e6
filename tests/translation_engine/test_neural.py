"""The tiny Marian model trained by the session fixture, through the HF and CTranslate2 engines."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from translation.engine.base import PRIORITY_PAIR_CHECKPOINT, EngineError
from translation.engine.ct2 import CTranslate2Engine, convert_to_ctranslate2
from translation.engine.hf import Seq2SeqEngine, max_new_tokens_for
from translation.engine.routing import Router

SENTENCES = [
    "Hello Maria!",
    "Where is the hotel?",
    "I have 3 dogs.",
    "The train leaves at 5:30.",
    "Can we meet at the park tomorrow?",
    "Thank you very much, Carlos.",
    "Emma is at the beach.",
    "I would like coffee, please.",
    "See you on Friday at 10:15.",
    "There are 12 people at the museum.",
]


@pytest.fixture(scope="module")
def hf_engine(tiny_model_dir: Path) -> Seq2SeqEngine:
    return Seq2SeqEngine.from_directory(tiny_model_dir, device="cpu")


@pytest.fixture(scope="module")
def ct2_engine(tiny_model_dir: Path) -> CTranslate2Engine:
    return CTranslate2Engine.from_directory(tiny_model_dir, device="cpu")


def test_finetune_output_is_a_complete_checkpoint(tiny_run: dict, tiny_model_dir: Path) -> None:
    names = {path.name for path in tiny_model_dir.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer_config.json",
        "metrics.json",
        "README.md",
        "curves.png",
    } <= names
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in names)
    assert not list(tiny_model_dir.parent.glob(".*partial*")) and not list(tiny_model_dir.parent.glob(".*.work"))
    metrics = json.loads((tiny_model_dir / "metrics.json").read_text())
    assert metrics["languages"] == ["en-es"]
    training = metrics["training"]
    assert training["last_loss"] < training["first_loss"] * 0.6  # the loss falls
    test = metrics["test"]
    assert test["finetuned"]["chrf"] > test["base"]["chrf"] + 10
    assert test["finetuned"]["bleu"] > test["base"]["bleu"]
    card = (tiny_model_dir / "README.md").read_text()
    assert "test chrF (fine-tuned)" in card and "en" in card


def test_reloads_through_the_engine_with_the_training_outputs(tiny_run: dict, hf_engine: Seq2SeqEngine) -> None:
    assert hf_engine.pairs() == {("en", "es")}  # read from metrics.json
    assert hf_engine.priority == PRIORITY_PAIR_CHECKPOINT
    examples = tiny_run["examples"]["finetuned"]
    outputs = hf_engine.translate_batch([e["source"] for e in examples], "en", "es")
    assert outputs == [e["output"] for e in examples]  # the saved best checkpoint is what was evaluated


def test_translates_its_domain(hf_engine: Seq2SeqEngine) -> None:
    outputs = hf_engine.translate_batch(SENTENCES, "en", "es")
    assert all(outputs) and len(set(outputs)) > len(SENTENCES) // 2
    joined = " ".join(outputs).lower()
    assert sum(word in joined for word in ("hola", "dónde", "tengo", "tren", "gracias", "playa", "café")) >= 3


def test_batch_equals_one_by_one(hf_engine: Seq2SeqEngine, ct2_engine: CTranslate2Engine) -> None:
    for engine in (hf_engine, ct2_engine):
        batched = engine.translate_batch(SENTENCES, "en", "es")
        single = [engine.translate_batch([text], "en", "es")[0] for text in SENTENCES]
        assert batched == single, type(engine).__name__


def test_hf_and_ctranslate2_agree(hf_engine: Seq2SeqEngine, ct2_engine: CTranslate2Engine) -> None:
    # int8 weights may flip a near-tie token, and a 150-step model has many near ties (which name or noun it
    # picks): how many depends on the CPU the model was trained and run on (on one machine 9 of 10 outputs
    # matched, on another 6, each differing by one word). So: close in chrF, most outputs identical. The
    # float32 conversion must match exactly (next test).
    from sacrebleu.metrics import CHRF

    hf = hf_engine.translate_batch(SENTENCES, "en", "es")
    ct2 = ct2_engine.translate_batch(SENTENCES, "en", "es")
    agree = sum(a == b for a, b in zip(hf, ct2, strict=True))
    closeness = CHRF().corpus_score(ct2, [hf]).score
    assert agree >= len(SENTENCES) // 2 and closeness >= 75, (closeness, list(zip(hf, ct2, strict=True)))


def test_hf_and_ctranslate2_float32_identical(tiny_model_dir: Path, hf_engine: Seq2SeqEngine) -> None:
    exact = CTranslate2Engine.from_directory(tiny_model_dir, device="cpu", quantization="float32")
    assert exact.translate_batch(SENTENCES, "en", "es") == hf_engine.translate_batch(SENTENCES, "en", "es")


def test_conversion_is_cached_beside_the_source(tiny_model_dir: Path, ct2_engine: CTranslate2Engine) -> None:
    converted = tiny_model_dir / "ct2-int8"
    assert (converted / "model.bin").is_file()
    stamp = (converted / "model.bin").stat().st_mtime_ns
    assert convert_to_ctranslate2(tiny_model_dir, "int8") == converted
    assert (converted / "model.bin").stat().st_mtime_ns == stamp  # reused, not rebuilt
    weights = tiny_model_dir / "model.safetensors"
    os.utime(weights, (stamp / 1e9 + 10, stamp / 1e9 + 10))  # newer source weights: convert again
    convert_to_ctranslate2(tiny_model_dir, "int8")
    assert (converted / "model.bin").stat().st_mtime_ns != stamp


@pytest.mark.parametrize("engine_name", ["hf_engine", "ct2_engine"])
def test_placeholders_survive_the_neural_engines(engine_name: str, request: pytest.FixtureRequest) -> None:
    engine = request.getfixturevalue(engine_name)
    router = Router([engine])
    texts = [
        "Hello @maria_g! See https://example.com/x?y=1 😀",
        "Where is the hotel? #travel",
        "I have 3 `dogs` and Bridge.",
        "Emma is at the beach 👍🏽👍🏽",
    ]
    results = router.translate_batch(texts, "en", "es", dnt=["Bridge"])
    spans = ["@maria_g", "https://example.com/x?y=1", "😀", "#travel", "`dogs`", "Bridge", "👍🏽👍🏽"]
    for text, result in zip(texts, results, strict=True):
        assert result.status == "ok" and result.engine == f"{engine.name}@{engine.version}"
        for span in spans:
            assert result.text.count(span) == text.count(span), (text, result.text)


def test_empty_texts_and_wrong_pair(hf_engine: Seq2SeqEngine) -> None:
    assert hf_engine.translate_batch(["", "  "], "en", "es") == ["", ""]
    with pytest.raises(EngineError):
        hf_engine.translate_batch(["hi"], "es", "en")


def test_generation_bound_follows_input_length() -> None:
    assert max_new_tokens_for([4, 9]) == 28
    assert max_new_tokens_for([1000]) == 256


def test_refuses_non_safetensors_directory(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(EngineError, match="not a safetensors checkpoint"):
        Seq2SeqEngine.from_directory(tmp_path)


def test_finetune_from_a_base_checkpoint(
    tiny_run: dict, tiny_model_dir: Path, parallel_tsv: Path, tmp_path: Path
) -> None:
    from translation.training.finetune import TranslationTrainingConfig, finetune_translation

    metrics = finetune_translation(
        TranslationTrainingConfig(
            data=parallel_tsv, out=tmp_path / "again", source="en", target="es", base=tiny_model_dir,
            max_steps=4, eval_steps=2, lr=1e-5, seed=5, ratios=(0.9, 0.05, 0.05), max_eval_samples=10,
            freeze="embeddings", freeze_layers=1, threads=1, log=lambda line: None,
        )
    )  # fmt: skip
    assert metrics["base_model"] == str(tiny_model_dir)
    # Same data, seed and split: the base model's test score is the score the first run reported for itself.
    assert metrics["test"]["base"]["chrf"] == tiny_run["test"]["finetuned"]["chrf"]
    assert metrics["training"]["trainable_parameters"] < tiny_run["training"]["trainable_parameters"]
    assert Seq2SeqEngine.from_directory(tmp_path / "again").translate_batch(["Hello Maria!"], "en", "es")[0]
