"""SentimentEngine over a tiny classifier fine-tuned by the tests themselves."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from sentiment.engine import EMOTIONS, POLARITY_OF, SentimentEngine
from sentiment.engine.labels import parse_label

TEXTS = [
    "you idiot, furious today",
    "happy lol",
    "the file this morning",
    "terrified again",
    "",
    "wow " * 300,  # far beyond max_length: truncated, not an error
    "😅😅😅",
]


@pytest.fixture(scope="module")
def engine(tiny_trained: tuple[Path, dict]) -> SentimentEngine:
    return SentimentEngine.from_directory(tiny_trained[0], device="cpu", name="tiny", version="7", batch_size=3)


def test_predictions_are_well_formed(engine: SentimentEngine) -> None:
    predictions = engine.predict_batch(TEXTS)
    assert len(predictions) == len(TEXTS)
    for prediction in predictions:
        assert set(prediction.probabilities) == set(EMOTIONS)
        assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert prediction.emotion == max(prediction.probabilities, key=prediction.probabilities.get)
        assert prediction.score == pytest.approx(prediction.probabilities[prediction.emotion])
        assert prediction.polarity == POLARITY_OF[prediction.emotion]
        assert 0.0 <= prediction.hostile_score <= 1.0


def test_scores_are_sums_over_the_checkpoint_labels(engine: SentimentEngine) -> None:
    """Emotion probability = sum over its variants, hostile score = sum over hostile variants."""
    text = "you idiot, so mad right now"
    batch = engine.tokenizer([text], return_tensors="pt")
    with torch.inference_mode():
        probabilities = torch.softmax(engine.model(**batch).logits, dim=-1)[0]
    labels = [engine.model.config.id2label[i] for i in range(len(probabilities))]
    assert any(parse_label(label)[1] for label in labels), "the sample marks anger and disgust hostile"
    expected_hostile = sum(p for p, label in zip(probabilities.tolist(), labels, strict=True) if parse_label(label)[1])
    expected_anger = sum(
        p for p, label in zip(probabilities.tolist(), labels, strict=True) if parse_label(label)[0] == "anger"
    )
    (prediction,) = engine.predict_batch([text])
    assert prediction.hostile_score == pytest.approx(expected_hostile, abs=1e-5)
    assert prediction.probabilities["anger"] == pytest.approx(expected_anger, abs=1e-5)


def test_order_and_batching_do_not_change_results(engine: SentimentEngine) -> None:
    together = engine.predict_batch(TEXTS)
    one_by_one = [engine.predict_batch([text])[0] for text in TEXTS]
    reversed_back = list(reversed(engine.predict_batch(list(reversed(TEXTS)))))
    for a, b, c in zip(together, one_by_one, reversed_back, strict=True):
        assert a.emotion == b.emotion == c.emotion
        assert a.hostile_score == pytest.approx(b.hostile_score, abs=1e-4)
        assert a.score == pytest.approx(c.score, abs=1e-4)


def test_empty_batch(engine: SentimentEngine) -> None:
    assert engine.predict_batch([]) == []


def test_engine_identity(engine: SentimentEngine) -> None:
    assert engine.label == "tiny@7"
    assert engine.device.type == "cpu"


def test_the_trained_model_learned_the_sample(engine: SentimentEngine) -> None:
    hostile, calm = engine.predict_batch(["you idiot, so mad again", "happy today"])
    assert hostile.hostile_score > calm.hostile_score
    assert calm.emotion == "joy"


def test_refuses_a_checkpoint_without_safetensors(tiny_trained: tuple[Path, dict], tmp_path: Path) -> None:
    copy = tmp_path / "nosafe"
    shutil.copytree(tiny_trained[0], copy)
    (copy / "model.safetensors").unlink()
    with pytest.raises(ValueError, match="safetensors"):
        SentimentEngine.from_directory(copy, device="cpu")


def test_refuses_labels_outside_the_scheme(tiny_base: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(tiny_base, num_labels=3)  # LABEL_0..LABEL_2
    model.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(tiny_base).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="LABEL_0"):
        SentimentEngine.from_directory(tmp_path, device="cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fp16_matches_cpu(tiny_trained: tuple[Path, dict]) -> None:
    cpu = SentimentEngine.from_directory(tiny_trained[0], device="cpu").predict_batch(TEXTS)
    gpu_engine = SentimentEngine.from_directory(tiny_trained[0], device="cuda")
    assert next(gpu_engine.model.parameters()).dtype == torch.float16
    gpu = gpu_engine.predict_batch(TEXTS)
    for a, b in zip(cpu, gpu, strict=True):
        assert a.hostile_score == pytest.approx(b.hostile_score, abs=2e-2)


def test_concurrent_callers_get_their_own_results(engine: SentimentEngine) -> None:
    """Celery runs the engine from a thread pool: concurrent calls must neither fail nor mix results."""
    from concurrent.futures import ThreadPoolExecutor

    batches = [TEXTS[i:] + TEXTS[:i] for i in range(len(TEXTS))] * 3
    expected = [[p.emotion for p in engine.predict_batch(batch)] for batch in batches]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda batch: [p.emotion for p in engine.predict_batch(batch)], batches))
    assert got == expected


def test_cpu_int8_quantizes_every_linear_and_keeps_the_answers(tiny_trained: tuple[Path, dict]) -> None:
    fp32 = SentimentEngine.from_directory(tiny_trained[0], device="cpu")
    int8 = SentimentEngine.from_directory(tiny_trained[0], device="cpu", cpu_int8=True)
    assert (fp32.precision, int8.precision) == ("fp32", "int8")
    modules = list(int8.model.modules())
    assert not any(type(m) is torch.nn.Linear for m in modules), "a float Linear was left behind"
    assert sum(type(m).__name__ == "Linear" and "quantized" in type(m).__module__ for m in modules) > 0
    texts = [*TEXTS, "you idiot, so mad again", "happy today"]
    for a, b in zip(fp32.predict_batch(texts), int8.predict_batch(texts), strict=True):
        assert sum(b.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert a.hostile_score == pytest.approx(b.hostile_score, abs=0.05)
        assert a.probabilities[a.emotion] == pytest.approx(b.probabilities[a.emotion], abs=0.05)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_int8_is_ignored_off_the_cpu(tiny_trained: tuple[Path, dict]) -> None:
    engine = SentimentEngine.from_directory(tiny_trained[0], device="cuda", cpu_int8=True)
    assert engine.precision == "fp16"
