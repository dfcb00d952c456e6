"""Batched emotion / polarity / hostility inference over a Hugging Face sequence-classification checkpoint.

Shaped like a transformers pipeline (preprocess -> _forward -> postprocess) but without the pipeline
machinery: the model is loaded once, from a local directory only, and injected.
"""

from __future__ import annotations

import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .labels import EMOTIONS, POLARITY_OF, parse_label

DEFAULT_MAX_LENGTH = 64
DEFAULT_BATCH_SIZE = 32


@dataclass(frozen=True)
class SentimentPrediction:
    """One message's tags: the top emotion, its polarity and probability, and the hostile probability."""

    emotion: str
    polarity: str
    score: float
    hostile_score: float
    probabilities: dict[str, float]


class LabelScheme:
    """Maps a checkpoint's label columns onto the seven emotions and the hostile score."""

    def __init__(self, labels: list[str]):
        parsed = [parse_label(label) for label in labels]  # ValueError for a label outside the scheme
        self.labels = list(labels)
        self.emotion_columns = [[i for i, (e, _) in enumerate(parsed) if e == emotion] for emotion in EMOTIONS]
        self.hostile_columns = [i for i, (_, hostile) in enumerate(parsed) if hostile]

    @classmethod
    def from_config(cls, config: Any) -> LabelScheme:
        id2label = {int(index): str(label) for index, label in config.id2label.items()}
        return cls([id2label[index] for index in range(len(id2label))])

    def collapse(self, probabilities: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[N, labels]`` probabilities -> (``[N, 7]`` emotion probabilities, ``[N]`` hostile score)."""
        rows = len(probabilities)
        emotions = torch.stack(
            [probabilities[:, cols].sum(dim=-1) if cols else torch.zeros(rows) for cols in self.emotion_columns],
            dim=-1,
        )
        hostile = probabilities[:, self.hostile_columns].sum(dim=-1) if self.hostile_columns else torch.zeros(rows)
        return emotions, hostile


class SentimentEngine:
    """Emotion classifier for chat messages; thread-compatible for inference, not for reloading."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        device: torch.device,
        name: str = "sentiment",
        version: str = "dev",
        max_length: int = DEFAULT_MAX_LENGTH,
        batch_size: int = DEFAULT_BATCH_SIZE,
        precision: str = "fp32",
    ):
        self.scheme = LabelScheme.from_config(model.config)
        self.precision = precision  # fp32, fp16 (CUDA) or int8 (CPU, dynamic): reported with the figures
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.device = device
        self.name = name
        self.version = version
        self.max_length = max_length
        self.batch_size = batch_size
        # A fast tokenizer sets its padding/truncation state on every call; two threads tokenizing at once
        # (Celery's thread pool) fail with "Already borrowed". Inference itself is safe to run concurrently.
        self._tokenizer_lock = threading.Lock()

    @classmethod
    def from_directory(
        cls,
        path: str | os.PathLike[str],
        *,
        device: str | torch.device | None = None,
        name: str | None = None,
        version: str | None = None,
        max_length: int = DEFAULT_MAX_LENGTH,
        batch_size: int = DEFAULT_BATCH_SIZE,
        cpu_int8: bool = False,
    ) -> SentimentEngine:
        """Load a checkpoint directory (safetensors only, no remote code, never the network).

        ``device`` defaults to CUDA when available; on CUDA the weights are cast to fp16. ``cpu_int8`` runs the
        linear layers with int8 weights and dynamically quantized activations when the device is the CPU (opt-in:
        faster, a little less accurate; docs/models.md compares its held-out figures and speed with fp32). Raises
        ValueError when the checkpoint's labels are not the emotion scheme of :mod:`sentiment.engine.labels`.
        """
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = Path(path)
        if not any(path.glob("*.safetensors")):
            raise ValueError(f"{path}: no *.safetensors weights (other weight formats are refused)")
        resolved = torch.device(device) if device is not None else _default_device()
        dtype = torch.float16 if resolved.type == "cuda" else torch.float32
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False)
        model = AutoModelForSequenceClassification.from_pretrained(
            path, local_files_only=True, use_safetensors=True, trust_remote_code=False, dtype=dtype
        ).to(resolved)
        loaded = cls(
            model,
            tokenizer,
            device=resolved,
            name=name or path.name,
            version=version or "local",
            max_length=max_length,
            batch_size=batch_size,
            precision="fp16" if dtype == torch.float16 else "fp32",
        )
        return loaded.with_cpu_int8() if cpu_int8 and resolved.type == "cpu" else loaded

    def with_cpu_int8(self) -> SentimentEngine:
        """A second engine over an int8 copy of this CPU engine's model (this one is left as it is)."""
        if self.device.type != "cpu":
            raise ValueError(f"int8 inference is for the CPU, not {self.device}")
        quantized = type(self)(
            quantize_linear_int8(self.model),
            self.tokenizer,
            device=self.device,
            name=self.name,
            version=self.version,
            max_length=self.max_length,
            batch_size=self.batch_size,
            precision="int8",
        )
        quantized._tokenizer_lock = self._tokenizer_lock  # one tokenizer, one lock
        return quantized

    @property
    def label(self) -> str:
        """``name@version``, the engine tag stored with every result."""
        return f"{self.name}@{self.version}"

    def predict_batch(self, texts: list[str]) -> list[SentimentPrediction]:
        """Tag every text, in order. Long inputs are truncated to ``max_length`` tokens."""
        if not texts:
            return []
        # Sorting by length keeps padding (wasted compute) small inside each chunk.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        results: list[SentimentPrediction | None] = [None] * len(texts)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            predictions = self.postprocess(self._forward(self.preprocess([texts[i] for i in chunk])))
            for index, prediction in zip(chunk, predictions, strict=True):
                results[index] = prediction
        return results  # type: ignore[return-value]

    def preprocess(self, texts: list[str]) -> dict[str, torch.Tensor]:
        with self._tokenizer_lock:
            encoded = self.tokenizer(
                texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
            )
        return {key: value.to(self.device) for key, value in encoded.items()}

    def _forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.inference_mode():
            logits = self.model(**inputs).logits
        # Softmax in fp32: fp16 probabilities of rare labels underflow to 0.
        return torch.softmax(logits.float(), dim=-1).cpu()

    def postprocess(self, probabilities: torch.Tensor) -> list[SentimentPrediction]:
        emotion_probs, hostile = self.scheme.collapse(probabilities)
        predictions = []
        for row, hostile_score in zip(emotion_probs.tolist(), hostile.tolist(), strict=True):
            scores = dict(zip(EMOTIONS, row, strict=True))
            emotion = max(scores, key=scores.__getitem__)
            predictions.append(
                SentimentPrediction(
                    emotion=emotion,
                    polarity=POLARITY_OF[emotion],
                    score=scores[emotion],
                    hostile_score=hostile_score,
                    probabilities=scores,
                )
            )
        return predictions


def quantize_linear_int8(model: Any) -> Any:
    """Every nn.Linear of ``model`` with int8 weights and per-batch int8 activations (CPU only).

    The ~2.7x CPU speed-up of a BERT-small forward comes from the fbgemm/oneDNN int8 kernels; the accuracy lost
    on the held-out split is in docs/models.md. Activations are scaled per batch, so a text's scores move a
    little with the texts batched beside it (fp32's do not). torch marks this eager-mode API deprecated in
    favour of torchao, but it ships in the torch release requirements.txt pins exactly; the warnings would fire
    on every load.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def _default_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
