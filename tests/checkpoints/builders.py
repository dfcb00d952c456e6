"""Builders for the checkpoint-intake tests: a tiny real model directory and archives of any shape.

Everything is made here at test time (no downloads). Archives are written with zipfile/tarfile directly so the
tests can produce what a careful tool never would: traversal names, links, devices, lying headers.
"""

from __future__ import annotations

import functools
import io
import json
import pickle
import stat
import struct
import tarfile
import tempfile
import zipfile
from pathlib import Path

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "good", "bad", "chat", ",", ".", "##s"]


class WritesSentinel:
    """Unpickling this object creates ``path``: the stand-in for code a malicious checkpoint would run."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):  # noqa: ANN204
        return (open, (self.path, "w"))


def evil_pickle(sentinel: Path) -> bytes:
    return pickle.dumps({"weight": WritesSentinel(sentinel)}, protocol=4)


def evil_torch_file(sentinel: Path) -> bytes:
    """What ``torch.save`` writes (a zip holding a pickle), with the same payload."""
    import torch

    buffer = io.BytesIO()
    torch.save({"weight": WritesSentinel(sentinel)}, buffer)
    return buffer.getvalue()


@functools.cache
def tiny_sentiment_files() -> dict[str, bytes]:
    """A real BertForSequenceClassification (safetensors) and its fast WordPiece tokenizer, as file bytes."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
        tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"))
        config = BertConfig(
            vocab_size=len(VOCAB),
            hidden_size=8,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=16,
            max_position_embeddings=32,
            num_labels=3,
        )
        torch.manual_seed(0)
        out = folder / "model"
        BertForSequenceClassification(config).save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
        return {item.name: item.read_bytes() for item in sorted(out.iterdir())}


@functools.cache
def tiny_translation_files() -> dict[str, bytes]:
    """The output shape of Bridge's translation pipeline (``--init tiny``): Marian + sentencepiece files."""
    from translation.training.tiny import TinyConfig, build_tiny_model, build_tiny_tokenizer

    texts = ["hello world", "hola mundo", "good morning", "buenos días", "the chat is open", "el chat está abierto"]
    tokenizer = build_tiny_tokenizer(texts * 4, vocab_size=60)
    model = build_tiny_model(tokenizer, TinyConfig(d_model=16, layers=1, heads=2, ffn_dim=32, max_positions=32))
    with tempfile.TemporaryDirectory() as temp:
        out = Path(temp)
        model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
        return {item.name: item.read_bytes() for item in sorted(out.iterdir())}


def write_dir(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def zip_bytes(files: dict[str, bytes] | list[tuple[str, bytes]], *, prefix: str = "") -> bytes:
    buffer = io.BytesIO()
    items = files.items() if isinstance(files, dict) else files
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in items:
            archive.writestr(prefix + name, data)
    return buffer.getvalue()


def zip_with_info(files: dict[str, bytes], extra: zipfile.ZipInfo, extra_data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr(extra, extra_data)
    return buffer.getvalue()


def zip_symlink_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # unix: the high 16 bits of external_attr are st_mode
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def tar_gz_bytes(
    files: dict[str, bytes] | list[tuple[str, bytes]], *, prefix: str = "", extra: list[tarfile.TarInfo] = ()
) -> bytes:
    buffer = io.BytesIO()
    items = files.items() if isinstance(files, dict) else files
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        if prefix:
            folder = tarfile.TarInfo(prefix.rstrip("/"))
            folder.type = tarfile.DIRTYPE
            folder.mode = 0o755
            archive.addfile(folder)
        for name, data in items:
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for info in extra:
            archive.addfile(info)
    return buffer.getvalue()


def tar_link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def safetensors_bytes(header: dict, data: bytes, *, declared_length: int | None = None) -> bytes:
    encoded = json.dumps(header).encode()
    length = len(encoded) if declared_length is None else declared_length
    return struct.pack("<Q", length) + encoded + data


def config_with(files: dict[str, bytes], **changes) -> dict[str, bytes]:
    """A copy of ``files`` with config.json updated by ``changes`` (None deletes a key)."""
    config = json.loads(files["config.json"])
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    return {**files, "config.json": json.dumps(config).encode()}
