"""CTranslate2 conversion and inference for the same Hugging Face seq2seq checkpoints.

The converted model is cached beside its source (``<checkpoint>/ct2-int8/``) and rebuilt when the source
weights are newer. Inference uses the source directory's tokenizer, so the two engines see identical tokens.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from translation.engine.base import EngineError
from translation.engine.hf import (
    NLLB_CODES,
    _declared_pairs,
    _multilingual_pairs,
    _tokenizer_kind,
    checkpoint_priority,
    max_new_tokens_for,
    pick_device,
    weights_digest,
)

_convert_lock = threading.Lock()


def _source_mtime(model_dir: Path) -> float:
    files = [model_dir / "config.json", *model_dir.glob("*.safetensors")]
    return max(path.stat().st_mtime for path in files if path.exists())


def convert_to_ctranslate2(
    model_dir: str | os.PathLike[str], quantization: str = "int8", *, output_dir: str | os.PathLike[str] | None = None
) -> Path:
    """Convert a HF checkpoint directory to CTranslate2 (cached: reused while newer than the source)."""
    import ctranslate2

    model_dir = Path(model_dir)
    if not any(model_dir.glob("*.safetensors")):
        raise EngineError(f"{model_dir}: no safetensors weights to convert")
    target = Path(output_dir) if output_dir else model_dir / f"ct2-{quantization}"
    with _convert_lock:
        if (target / "model.bin").is_file() and (target / "model.bin").stat().st_mtime >= _source_mtime(model_dir):
            return target
        # Convert into a temp dir and rename: a reader never sees half a model, a crash leaves no debris.
        temp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
        try:
            converter = ctranslate2.converters.TransformersConverter(str(model_dir), trust_remote_code=False)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*sacremoses.*")
                converter.convert(str(temp), quantization=quantization, force=True)
            if target.exists():
                shutil.rmtree(target)
            temp.rename(target)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
    return target


class CTranslate2Engine:
    """Batched greedy translation with a CTranslate2 model (int8 on CPU, float16 on CUDA)."""

    def __init__(
        self,
        translator: Any,
        tokenizer: Any,
        *,
        pairs: Iterable[tuple[str, str]],
        name: str,
        version: str,
        priority: int | None = None,
        batch_size: int = 32,
    ):
        self.translator = translator
        self.tokenizer = tokenizer
        self.name = name
        self.version = version
        self.batch_size = batch_size
        self.kind = _tokenizer_kind(None, tokenizer)
        self._pairs = set(pairs)
        self.priority = priority if priority is not None else checkpoint_priority(self.kind, self._pairs)
        self._lock = threading.Lock()  # tokenizer.src_lang is shared state

    def __repr__(self) -> str:
        return f"CTranslate2Engine({self.name}@{self.version}, {sorted(self._pairs)})"

    @classmethod
    def from_directory(
        cls,
        path: str | os.PathLike[str],
        *,
        pairs: Iterable[tuple[str, str]] | None = None,
        device: str | None = None,
        name: str | None = None,
        version: str | None = None,
        priority: int | None = None,
        quantization: str | None = None,
        batch_size: int = 32,
        intra_threads: int = 0,
    ) -> CTranslate2Engine:
        """Load (converting first if needed) the HF checkpoint at ``path``."""
        import ctranslate2
        from transformers import AutoTokenizer

        path = Path(path)
        device = pick_device(device)
        on_cuda = device.startswith("cuda")
        quantization = quantization or ("float16" if on_cuda else "int8")
        converted = convert_to_ctranslate2(path, quantization)
        device_index = int(device.split(":", 1)[1]) if ":" in device else 0
        translator = ctranslate2.Translator(
            str(converted),
            device="cuda" if on_cuda else "cpu",
            device_index=device_index,
            compute_type=quantization,
            intra_threads=intra_threads,
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*sacremoses.*")
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False)
        if pairs is None:
            pairs = _declared_pairs(path) or _multilingual_pairs(tokenizer)
        pairs = set(pairs)
        if not pairs:
            raise EngineError(f"{path}: cannot tell which language pairs it translates; pass pairs=")
        return cls(
            translator,
            tokenizer,
            pairs=pairs,
            name=name or f"{path.name}-ct2",
            version=version or f"{weights_digest(path)}-{quantization}",
            priority=priority,
            batch_size=batch_size,
        )

    def pairs(self) -> set[tuple[str, str]]:
        return set(self._pairs)

    def translate_batch(self, texts: list[str], source: str, target: str) -> list[str]:
        if (source, target) not in self._pairs:
            raise EngineError(f"{self.name} does not translate {source}->{target}")
        try:
            return self._translate(texts, source, target)
        except EngineError:
            raise
        except Exception as exc:
            raise EngineError(f"{self.name}@{self.version}: {exc}") from exc

    def _translate(self, texts: list[str], source: str, target: str) -> list[str]:
        results = [""] * len(texts)
        todo = [index for index, text in enumerate(texts) if text.strip()]
        if not todo:
            return results
        prefix_token = None
        with self._lock:
            if self.kind == "m2m100":
                self.tokenizer.src_lang = source
                prefix_token = self.tokenizer.lang_code_to_token[target]
            elif self.kind == "nllb":
                self.tokenizer.src_lang = NLLB_CODES.get(source, source)
                prefix_token = NLLB_CODES.get(target, target)
            # Same tokens as the HF engine: the tokenizer adds </s> (and the language tag).
            batch = [self.tokenizer.convert_ids_to_tokens(self.tokenizer.encode(texts[index])) for index in todo]
        outputs = self.translator.translate_batch(
            batch,
            target_prefix=[[prefix_token]] * len(batch) if prefix_token else None,
            beam_size=1,
            max_batch_size=self.batch_size,
            max_decoding_length=max_new_tokens_for(len(tokens) for tokens in batch),
        )
        for index, output in zip(todo, outputs, strict=True):
            tokens = output.hypotheses[0]
            if prefix_token and tokens[:1] == [prefix_token]:
                tokens = tokens[1:]
            ids = self.tokenizer.convert_tokens_to_ids(tokens)
            results[index] = self.tokenizer.decode(ids, skip_special_tokens=True).strip()
        return results


def main(argv: list[str] | None = None) -> None:
    """``python -m translation.engine.ct2 CHECKPOINT_DIR [--quantization int8]``: convert (or reuse) once."""
    import argparse

    parser = argparse.ArgumentParser(description="Convert a HF seq2seq checkpoint to CTranslate2 (cached beside it)")
    parser.add_argument("model_dir")
    parser.add_argument("--quantization", default="int8", help="int8 (CPU), float16 (CUDA), int8_float16, float32")
    options = parser.parse_args(argv)
    print(convert_to_ctranslate2(options.model_dir, options.quantization))


if __name__ == "__main__":
    main()
