"""Hugging Face seq2seq checkpoints (MarianMT, M2M100, NLLB) loaded from a local directory.

Loading is locked down: safetensors only, no remote code, no hub access. CPU by default; on CUDA the model
runs in fp16.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from translation.engine.base import PRIORITY_MULTILINGUAL_CHECKPOINT, PRIORITY_PAIR_CHECKPOINT, EngineError

# NLLB names languages by ISO 639-3 + script.
NLLB_CODES = {
    "en": "eng_Latn",
    "es": "spa_Latn",
    "fr": "fra_Latn",
    "de": "deu_Latn",
    "pt": "por_Latn",
    "it": "ita_Latn",
    "zh": "zho_Hans",
    "ja": "jpn_Jpan",
    "ca": "cat_Latn",
    "gl": "glg_Latn",
    "nl": "nld_Latn",
    "ru": "rus_Cyrl",
    "ko": "kor_Hang",
    "ar": "arb_Arab",
}
MAX_NEW_TOKENS_CAP = 256


def max_new_tokens_for(input_lengths: Iterable[int], cap: int = MAX_NEW_TOKENS_CAP) -> int:
    """A generation bound from the longest input: a translation is rarely over twice its source."""
    return min(cap, 2 * max(input_lengths, default=0) + 10)


def pick_device(device: str | None = None) -> str:
    import torch

    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def weights_digest(path: str | Path, length: int = 12) -> str:
    """A short content hash of a checkpoint's safetensors files: a version that changes with the weights."""
    digest = hashlib.sha256()
    for weights in sorted(Path(path).glob("*.safetensors")):
        with weights.open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()[:length]


def _tokenizer_kind(model: Any, tokenizer: Any) -> str:
    if type(tokenizer).__name__.startswith("Nllb"):
        return "nllb"
    if hasattr(tokenizer, "get_lang_id") and hasattr(tokenizer, "lang_code_to_id"):
        return "m2m100"
    return "single"


def _declared_pairs(path: Path) -> set[tuple[str, str]]:
    """Pairs a Bridge training run recorded in metrics.json ("languages": ["en-es"])."""
    metrics = path / "metrics.json"
    if not metrics.is_file():
        return set()
    try:
        languages = json.loads(metrics.read_text(encoding="utf-8")).get("languages", [])
    except (ValueError, AttributeError):
        return set()
    return {tuple(item.split("-", 1)) for item in languages if isinstance(item, str) and "-" in item}


def checkpoint_priority(kind: str, pairs: set[tuple[str, str]]) -> int:
    """Routing rank of a neural checkpoint: one fine-tuned for a single pair beats a multilingual one."""
    multilingual = kind != "single" or len(pairs) > 1
    return PRIORITY_MULTILINGUAL_CHECKPOINT if multilingual else PRIORITY_PAIR_CHECKPOINT


class Seq2SeqEngine:
    """Batched greedy translation with a seq2seq model and its tokenizer."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        pairs: Iterable[tuple[str, str]],
        name: str,
        version: str,
        device: str = "cpu",
        priority: int | None = None,
        batch_size: int = 32,
        max_new_tokens_cap: int = MAX_NEW_TOKENS_CAP,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.version = version
        self.device = device
        self.batch_size = batch_size
        self.max_new_tokens_cap = max_new_tokens_cap
        self.kind = _tokenizer_kind(model, tokenizer)
        self._pairs = set(pairs)
        self.priority = priority if priority is not None else checkpoint_priority(self.kind, self._pairs)
        # src_lang is state on the tokenizer: one batch at a time may set it.
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Seq2SeqEngine({self.name}@{self.version}, {self.kind}, {sorted(self._pairs)}, {self.device})"

    @classmethod
    def from_directory(
        cls,
        path: str | Path,
        *,
        pairs: Iterable[tuple[str, str]] | None = None,
        device: str | None = None,
        name: str | None = None,
        version: str | None = None,
        priority: int | None = None,
        batch_size: int = 32,
    ) -> Seq2SeqEngine:
        """Load a checkpoint directory (config.json, *.safetensors, tokenizer files); never the network."""
        import torch
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        path = Path(path)
        if not (path / "config.json").is_file() or not any(path.glob("*.safetensors")):
            raise EngineError(f"{path} is not a safetensors checkpoint directory")
        device = pick_device(device)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*sacremoses.*")  # optional Marian normaliser
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False)
        dtype = torch.float16 if device.startswith("cuda") else torch.float32
        model = AutoModelForSeq2SeqLM.from_pretrained(
            path, local_files_only=True, trust_remote_code=False, use_safetensors=True, dtype=dtype
        )
        model.to(device).eval()
        if pairs is None:
            pairs = _declared_pairs(path) or _multilingual_pairs(tokenizer)
        pairs = set(pairs)
        if not pairs:
            raise EngineError(f"{path}: cannot tell which language pairs it translates; pass pairs=")
        return cls(
            model,
            tokenizer,
            pairs=pairs,
            name=name or path.name,
            version=version or weights_digest(path),
            device=device,
            priority=priority,
            batch_size=batch_size,
        )

    def pairs(self) -> set[tuple[str, str]]:
        return set(self._pairs)

    def _language_settings(self, source: str, target: str) -> tuple[str | None, int | None]:
        """(tokenizer src_lang, forced BOS token id) for multilingual models; (None, None) otherwise."""
        if self.kind == "m2m100":
            return source, self.tokenizer.get_lang_id(target)
        if self.kind == "nllb":
            target_code = NLLB_CODES.get(target, target)
            return NLLB_CODES.get(source, source), self.tokenizer.convert_tokens_to_ids(target_code)
        return None, None

    def translate_batch(self, texts: list[str], source: str, target: str) -> list[str]:
        if (source, target) not in self._pairs:
            raise EngineError(f"{self.name} does not translate {source}->{target}")
        try:
            return self._translate(texts, source, target)
        except EngineError:
            raise
        except Exception as exc:  # CUDA OOM, tokenizer errors: the caller retries
            raise EngineError(f"{self.name}@{self.version}: {exc}") from exc

    def _translate(self, texts: list[str], source: str, target: str) -> list[str]:
        import torch

        results = [""] * len(texts)
        todo = [index for index, text in enumerate(texts) if text.strip()]
        # Similar lengths together: less padding, same results (padding is masked).
        todo.sort(key=lambda index: len(texts[index]))
        src_lang, forced_bos = self._language_settings(source, target)
        with self._lock, torch.inference_mode():
            if src_lang is not None:
                self.tokenizer.src_lang = src_lang
            for start in range(0, len(todo), self.batch_size):
                chunk = todo[start : start + self.batch_size]
                encoded = self.tokenizer(
                    [texts[index] for index in chunk],
                    return_tensors="pt",
                    padding=True,
                    truncation=True,
                    max_length=512,
                ).to(self.device)
                lengths = encoded["attention_mask"].sum(dim=1).tolist()
                extra = {"forced_bos_token_id": forced_bos} if forced_bos is not None else {}
                generated = self.model.generate(
                    **encoded,
                    max_new_tokens=max_new_tokens_for(lengths, self.max_new_tokens_cap),
                    num_beams=1,
                    do_sample=False,
                    **extra,
                )
                if forced_bos is not None:
                    # Drop the decoder start and the forced language tag: some tokenizers do not mark the
                    # tag as special, and it must never reach a reader.
                    generated = generated[:, 2:]
                decoded = self.tokenizer.batch_decode(generated, skip_special_tokens=True)
                for index, text in zip(chunk, decoded, strict=True):
                    results[index] = text.strip()
        return results


def _multilingual_pairs(tokenizer: Any) -> set[tuple[str, str]]:
    kind = _tokenizer_kind(None, tokenizer)
    if kind == "m2m100":
        codes = sorted(code for code in tokenizer.lang_code_to_id if len(code) == 2)
    elif kind == "nllb":
        vocab = tokenizer.get_vocab()
        codes = sorted(code for code, nllb in NLLB_CODES.items() if nllb in vocab)
    else:
        return set()
    return set(itertools.permutations(codes, 2))


def translate_with_model(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    source: str,
    target: str,
    batch_size: int = 64,
    device: str | None = None,
) -> list[str]:
    """Greedy translations of ``texts`` by an in-memory model (used by training evaluation)."""
    engine = Seq2SeqEngine(
        model,
        tokenizer,
        pairs={(source, target)},
        name="eval",
        version="0",
        device=device or str(next(model.parameters()).device),
        batch_size=batch_size,
    )
    was_training = model.training
    model.eval()
    try:
        return engine.translate_batch(list(texts), source, target)
    finally:
        model.train(was_training)
