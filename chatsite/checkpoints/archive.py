"""Safe intake of an uploaded checkpoint archive (.zip or .tar.gz of a Hugging Face model directory).

A model file is code in disguise (a pickle runs whatever its ``__reduce__`` says on load), so nothing in an
upload is executed, imported or deserialised by a general-purpose loader before it has passed every check here:

1. :func:`inspect_archive` reads only the archive's directory (zip central directory, tar headers while streaming)
   and refuses anything that is not a flat model directory of allow-listed file types, bounded in size.
2. :func:`extract_safely` writes regular files only, into a fresh directory, counting the bytes it actually
   writes (headers can lie) and removing everything on failure.
3. :func:`validate_model_dir` checks config.json, every safetensors header and the tokenizer.

:func:`accept_archive` runs all three. Framework-free: no Django import, so workers and scripts can use it.
Every refusal is an :class:`ArchiveRejected` with a snake_case ``code`` and a human ``detail``.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import re
import shutil
import stat
import struct
import tarfile
import zipfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

KINDS = ("sentiment", "translation")

# Standard transformers classes only: each loads with trust_remote_code=False and from safetensors.
ALLOWED_ARCHITECTURES: dict[str, frozenset[str]] = {
    "sentiment": frozenset(
        {
            "AlbertForSequenceClassification",
            "BertForSequenceClassification",
            "CamembertForSequenceClassification",
            "DebertaForSequenceClassification",
            "DebertaV2ForSequenceClassification",
            "DistilBertForSequenceClassification",
            "ElectraForSequenceClassification",
            "MPNetForSequenceClassification",
            "ModernBertForSequenceClassification",
            "RobertaForSequenceClassification",
            "XLMRobertaForSequenceClassification",
        }
    ),
    "translation": frozenset(
        {
            "M2M100ForConditionalGeneration",  # M2M100 and dense NLLB-200
            "MBartForConditionalGeneration",
            "MT5ForConditionalGeneration",
            "MarianMTModel",
            "NllbMoeForConditionalGeneration",
            "T5ForConditionalGeneration",
        }
    ),
}

# Files a Hugging Face model directory (and Bridge's training pipelines) legitimately contain.
ALLOWED_NAMES = frozenset(
    {
        "config.json",
        "generation_config.json",
        "model.safetensors.index.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "vocab.json",
        "vocab.txt",
        "merges.txt",
        "README.md",
        "metrics.json",
        "VERSION",
    }
)
# sentencepiece models (*.model, *.spm) are protobuf, not pickle; they are parsed by sentencepiece in validation.
ALLOWED_SUFFIXES = (".safetensors", ".model", ".spm", ".png")
_SAFE_STEM = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$")
PICKLE_SUFFIXES = frozenset(
    {".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".npy", ".npz", ".h5", ".msgpack", ".dill"}
)
CODE_SUFFIXES = frozenset({".py", ".pyc", ".pyo", ".pyd", ".so", ".dll", ".dylib", ".sh", ".exe", ".ipynb"})
# Archive tools add these; they are skipped (never extracted), not refused.
IGNORED_PREFIXES = ("__MACOSX/",)
IGNORED_NAMES = frozenset({".DS_Store"})

CONFIG_CODE_KEYS = ("auto_map", "custom_pipelines", "trust_remote_code")
TOKENIZER_VOCAB_NAMES = frozenset({"tokenizer.json", "vocab.txt", "vocab.json"})

# Safetensors dtypes and their width in bits (sub-byte float formats included).
SAFETENSORS_DTYPE_BITS = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "I64": 64,
    "U64": 64,
    "F64": 64,
    "C64": 64,
}

_CHUNK = 1 << 20
_GIB = 1 << 30
_MIB = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass
class ArchiveLimits:
    """Caps applied to an upload; the defaults fit a model of a few hundred million fp32 parameters."""

    max_compressed_bytes: int = 2 * _GIB
    max_total_bytes: int = 4 * _GIB
    max_file_bytes: int = 4 * _GIB
    max_entries: int = 200
    max_ratio: float = 100.0
    # Ratios are judged only past this many uncompressed bytes: small JSON files and tar padding legitimately
    # compress far better than 100:1, and a bomb has to be big to matter.
    ratio_floor_bytes: int = 1 * _MIB
    max_safetensors_header_bytes: int = 16 * _MIB


class ArchiveRejected(ValueError):
    """An upload refused before anything in it was loaded."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class ArchiveEntry:
    archive_name: str  # the name as stored in the archive
    name: str  # the file name it is extracted to (top-level folder stripped)
    size: int  # declared uncompressed size
    compressed_size: int | None  # zip only: a tar.gz is one compressed stream


@dataclass(frozen=True)
class ArchiveManifest:
    format: str  # "zip" | "tar.gz"
    archive_bytes: int
    prefix: str | None  # the single top-level folder that was stripped, if any
    entries: tuple[ArchiveEntry, ...]
    ignored: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        return [entry.name for entry in self.entries]

    @property
    def total_size(self) -> int:
        return sum(entry.size for entry in self.entries)


@dataclass(frozen=True)
class ValidatedModel:
    path: Path
    kind: str
    architecture: str
    model_type: str | None
    weight_files: tuple[str, ...]
    parameter_count: int
    tokenizer_class: str
    config: dict[str, Any] = field(repr=False)


# --------------------------------------------------------------------------------------------------------------
# Names


def _normalise(raw: str) -> PurePosixPath:
    """The entry's path as POSIX parts; refuses absolute paths, drive letters and ``..`` components."""
    if "\x00" in raw or any(ord(ch) < 32 for ch in raw):
        raise ArchiveRejected("disallowed_file", f"entry name {raw!r} contains control characters")
    name = raw.replace("\\", "/")  # a Windows-made archive (or an attacker) may use backslashes
    if name.startswith("/") or _DRIVE.match(name):
        raise ArchiveRejected("absolute_path", f"entry {raw!r} has an absolute path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ArchiveRejected("path_traversal", f"entry {raw!r} points outside the archive")
    if any(_DRIVE.match(part) for part in parts):
        raise ArchiveRejected("absolute_path", f"entry {raw!r} has a drive letter")
    return PurePosixPath(*parts)


def check_file_name(name: str) -> None:
    """Refuse a (top-level) model-directory file name that is not on the allow-list."""
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raise ArchiveRejected(
            "pickle_weights", f"{name}: pickle-based or non-safetensors weights are refused; upload *.safetensors"
        )
    if suffix in CODE_SUFFIXES:
        raise ArchiveRejected("custom_code", f"{name}: code files are refused (no remote code is ever run)")
    if name in ALLOWED_NAMES:
        return
    if name.endswith(ALLOWED_SUFFIXES) and _SAFE_STEM.match(name):
        return
    raise ArchiveRejected("disallowed_file", f"{name}: not a file type a model directory may contain")


def _is_ignored(path: PurePosixPath) -> bool:
    text = str(path) + "/"
    return path.name in IGNORED_NAMES or any(text.startswith(prefix) for prefix in IGNORED_PREFIXES)


# --------------------------------------------------------------------------------------------------------------
# Reading archives


def _sniff(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(4)
    if not head:
        raise ArchiveRejected("empty", "the uploaded file is empty")
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head.startswith(b"\x1f\x8b"):
        return "tar.gz"
    raise ArchiveRejected("not_an_archive", "the upload is neither a .zip nor a .tar.gz archive")


class _CountingReader(io.RawIOBase):
    """Reads a decompressed stream, refusing it once it outgrows the caps (a gzip bomb never finishes)."""

    def __init__(self, stream: IO[bytes], budget: int, ratio_budget: int) -> None:
        self._stream = stream
        self._budget = budget
        self._ratio_budget = ratio_budget
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(len(buffer))
        self.count += len(data)
        if self.count > self._ratio_budget:
            raise ArchiveRejected("compression_ratio", "the archive decompresses far beyond its size (a bomb?)")
        if self.count > self._budget:
            raise ArchiveRejected("too_large", "the archive decompresses past the size cap")
        buffer[: len(data)] = data
        return len(data)


@contextmanager
def _open_tar_stream(path: Path, limits: ArchiveLimits, archive_bytes: int) -> Iterator[tarfile.TarFile]:
    """A streaming (``r|``) TarFile over a byte-counted gunzip of ``path``."""
    # Tar adds a 512-byte header and up to 511 bytes of padding per member, plus end blocks and PAX records.
    budget = limits.max_total_bytes + (limits.max_entries + 2) * 4096 + 20480
    ratio_budget = max(limits.ratio_floor_bytes, int(limits.max_ratio * archive_bytes))
    with open(path, "rb") as raw, gzip.GzipFile(fileobj=raw, mode="rb") as gz:
        counted = io.BufferedReader(_CountingReader(gz, budget, ratio_budget), buffer_size=_CHUNK)
        with tarfile.open(fileobj=counted, mode="r|") as tar:
            yield tar


def _check_tar_member(member: tarfile.TarInfo) -> None:
    if member.issym():
        raise ArchiveRejected("symlink", f"entry {member.name!r} is a symbolic link")
    if member.islnk():
        raise ArchiveRejected("hardlink", f"entry {member.name!r} is a hard link")
    if not (member.isreg() or member.isdir()) or member.issparse():
        raise ArchiveRejected("special_file", f"entry {member.name!r} is a device, fifo or other special file")


def _check_zip_info(info: zipfile.ZipInfo) -> None:
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise ArchiveRejected("symlink", f"entry {info.filename!r} is a symbolic link")
    file_type = stat.S_IFMT(mode)
    if file_type and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise ArchiveRejected("special_file", f"entry {info.filename!r} is a device, fifo or other special file")
    if info.flag_bits & 0x1:
        raise ArchiveRejected("encrypted", f"entry {info.filename!r} is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
        raise ArchiveRejected("not_an_archive", f"entry {info.filename!r} uses an unsupported compression method")


def _zip_directory_size_check(path: Path, limits: ArchiveLimits) -> None:
    """Refuse a huge central directory before zipfile builds an object per entry (millions would fit in 2 GiB)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        fh.seek(max(0, size - (65535 + 22)))
        tail = fh.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return  # zipfile will say what is wrong
    _, _, _, _, total, directory_bytes, _, _ = struct.unpack("<4s4H2LH", tail[at : at + 22])
    # 0xFFFF / 0xFFFFFFFF mean "see the zip64 record"; zipfile reads that one.
    if total != 0xFFFF and total > limits.max_entries:
        raise ArchiveRejected("too_many_entries", f"{total} entries (at most {limits.max_entries})")
    if directory_bytes != 0xFFFFFFFF and directory_bytes > limits.max_entries * 1024:
        raise ArchiveRejected("too_many_entries", "the archive directory is implausibly large")


def _read_entries(path: Path, fmt: str, limits: ArchiveLimits, archive_bytes: int):
    """Yield ``(raw_name, is_dir, size, compressed_size)`` per entry, after the per-entry type checks."""
    if fmt == "zip":
        _zip_directory_size_check(path, limits)
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if len(infos) > limits.max_entries:
                raise ArchiveRejected("too_many_entries", f"{len(infos)} entries (at most {limits.max_entries})")
            for info in infos:
                _check_zip_info(info)
                yield info.filename, info.is_dir(), info.file_size, info.compress_size
        return
    count = 0
    with _open_tar_stream(path, limits, archive_bytes) as tar:
        for member in tar:
            count += 1
            if count > limits.max_entries:
                raise ArchiveRejected("too_many_entries", f"more than {limits.max_entries} entries")
            _check_tar_member(member)
            yield member.name, member.isdir(), member.size, None


def _boundary(func):  # noqa: ANN001, ANN202
    """Turn any parser failure on hostile bytes into an ArchiveRejected: callers see one exception type."""

    def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        try:
            return func(*args, **kwargs)
        except ArchiveRejected:
            raise
        except MemoryError:
            raise ArchiveRejected("too_large", "the archive needs too much memory to read") from None
        except RecursionError:
            raise ArchiveRejected("corrupt_archive", "the archive nests too deeply") from None
        # zipfile, tarfile, gzip and zlib raise a wide and undocumented variety on damaged input.
        except Exception as exc:  # noqa: BLE001
            raise ArchiveRejected("corrupt_archive", f"the upload could not be read: {exc!r}") from None

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


@_boundary
def inspect_archive(path: str | os.PathLike[str], *, kind: str, limits: ArchiveLimits | None = None) -> ArchiveManifest:
    """Check an archive from its directory/headers alone (nothing is extracted) and list what it would yield."""
    if kind not in KINDS:
        raise ArchiveRejected("bad_kind", f"kind must be one of {', '.join(KINDS)}")
    limits = limits or ArchiveLimits()
    path = Path(path)
    archive_bytes = path.stat().st_size
    if archive_bytes > limits.max_compressed_bytes:
        raise ArchiveRejected(
            "too_large", f"the upload is {archive_bytes} bytes (at most {limits.max_compressed_bytes})"
        )
    fmt = _sniff(path)

    files: list[tuple[str, PurePosixPath, int, int | None]] = []
    dirs: list[PurePosixPath] = []
    ignored: list[str] = []
    seen: set[str] = set()
    total = 0
    # closing(): a refusal mid-listing closes the archive at once, not whenever the generator is collected.
    with closing(_read_entries(path, fmt, limits, archive_bytes)) as listing:
        for raw, is_dir, size, compressed in listing:
            parts = _normalise(raw)
            key = str(parts).casefold()  # two names differing only in case collide on macOS and Windows
            if key in seen:
                raise ArchiveRejected("duplicate_entry", f"entry {raw!r} appears twice")
            seen.add(key)
            if not parts.parts or _is_ignored(parts):
                ignored.append(raw)
                continue
            if is_dir:
                dirs.append(parts)
                continue
            if size > limits.max_file_bytes:
                raise ArchiveRejected("too_large", f"{raw}: {size} bytes (at most {limits.max_file_bytes} per file)")
            total += size
            if total > limits.max_total_bytes:
                raise ArchiveRejected("too_large", f"the archive expands past {limits.max_total_bytes} bytes")
            if (
                compressed is not None
                and size > limits.ratio_floor_bytes
                and size > limits.max_ratio * max(compressed, 1)
            ):
                raise ArchiveRejected("compression_ratio", f"{raw} expands {size / max(compressed, 1):.0f}x")
            check_file_name(parts.name)  # before layout: a .bin in a subfolder is still pickle_weights
            files.append((raw, parts, size, compressed))

    if not files:
        raise ArchiveRejected("empty", "the archive contains no files")
    if total > limits.ratio_floor_bytes and total > limits.max_ratio * archive_bytes:
        raise ArchiveRejected("compression_ratio", f"the archive expands {total / archive_bytes:.0f}x")

    # A flat model directory, optionally inside one top-level folder (what "zip -r mymodel" produces).
    depths = {len(parts.parts) for _, parts, _, _ in files}
    tops = {parts.parts[0] for _, parts, _, _ in files}
    prefix = None
    if depths == {2} and len(tops) == 1:
        prefix = tops.pop()
    elif depths != {1}:
        raise ArchiveRejected("disallowed_file", "the archive must hold one model directory (no nested folders)")
    for folder in dirs:
        if folder.parts != ((prefix,) if prefix else ()):
            raise ArchiveRejected("disallowed_file", f"unexpected folder {str(folder)!r} in the archive")

    entries = tuple(ArchiveEntry(raw, parts.name, size, compressed) for raw, parts, size, compressed in files)
    names = {entry.name for entry in entries}
    if "config.json" not in names:
        raise ArchiveRejected("missing_config", "the model directory has no config.json")
    if not any(name.endswith(".safetensors") for name in names):
        raise ArchiveRejected("no_weights", "the model directory has no *.safetensors weights")
    return ArchiveManifest(fmt, archive_bytes, prefix, entries, tuple(ignored))


# --------------------------------------------------------------------------------------------------------------
# Extraction


class _Budget:
    def __init__(self, limits: ArchiveLimits) -> None:
        self.limits = limits
        self.total = 0


def _copy_entry(source: IO[bytes], dest: Path, entry: ArchiveEntry, budget: _Budget) -> None:
    """Stream one entry to a new regular file, refusing it the moment it outgrows its declared size."""
    limit = min(entry.size, budget.limits.max_file_bytes)
    # O_EXCL + O_NOFOLLOW: never write through a link or over a file something else put there.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    written = 0
    with os.fdopen(os.open(dest, flags, 0o644), "wb") as out:
        while chunk := source.read(_CHUNK):
            written += len(chunk)
            budget.total += len(chunk)
            if written > limit or budget.total > budget.limits.max_total_bytes:
                raise ArchiveRejected("too_large", f"{entry.archive_name} expands past its declared size")
            out.write(chunk)
    if written != entry.size:
        raise ArchiveRejected("corrupt_archive", f"{entry.archive_name} is shorter than its declared size")


def _extract(path: Path, manifest: ArchiveManifest, dest: Path, limits: ArchiveLimits) -> None:
    by_name = {entry.archive_name: entry for entry in manifest.entries}
    done: set[str] = set()
    budget = _Budget(limits)
    if manifest.format == "zip":
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                entry = by_name.get(info.filename)
                if entry is None:
                    continue
                # Re-check what is about to be written, in case the file changed since inspection.
                _check_zip_info(info)
                if info.file_size != entry.size or info.filename in done:
                    raise ArchiveRejected("archive_changed", "the archive changed after it was inspected")
                with archive.open(info) as source:  # zipfile verifies the CRC at the end of each entry
                    _copy_entry(source, dest / entry.name, entry, budget)
                done.add(info.filename)
    else:
        with _open_tar_stream(path, limits, manifest.archive_bytes) as tar:
            for member in tar:
                entry = by_name.get(member.name)
                if entry is None:
                    continue
                _check_tar_member(member)
                if member.isdir() or member.size != entry.size or member.name in done:
                    raise ArchiveRejected("archive_changed", "the archive changed after it was inspected")
                source = tar.extractfile(member)
                if source is None:
                    raise ArchiveRejected("special_file", f"{member.name!r} is not a regular file")
                _copy_entry(source, dest / entry.name, entry, budget)
                done.add(member.name)
    if done != set(by_name):
        raise ArchiveRejected("archive_changed", "the archive changed after it was inspected")


def extract_safely(
    path: str | os.PathLike[str],
    manifest: ArchiveManifest,
    dest_dir: str | os.PathLike[str],
    *,
    limits: ArchiveLimits | None = None,
) -> Path:
    """Extract the manifest's files (regular files only, flat) into ``dest_dir``, which must not exist yet."""
    limits = limits or ArchiveLimits()
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=False)
    try:
        _boundary(_extract)(Path(path), manifest, dest, limits)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return dest


# --------------------------------------------------------------------------------------------------------------
# Validation of the extracted directory


def _load_json(path: Path, code: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ArchiveRejected(code, f"{path.name} is not valid JSON: {exc}") from None


def _find_key(value: Any, keys: tuple[str, ...], depth: int = 0) -> str | None:
    """The first of ``keys`` present anywhere in a JSON document (sub-configs can carry auto_map too)."""
    if depth > 32:
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if key in keys:
                return key
            found = _find_key(item, keys, depth + 1)
            if found:
                return found
    elif isinstance(value, list):
        for item in value:
            found = _find_key(item, keys, depth + 1)
            if found:
                return found
    return None


def check_safetensors(path: str | os.PathLike[str], *, max_header_bytes: int = 16 * _MIB) -> int:
    """Bounds-check a safetensors file's header against the file; return its parameter count.

    The header is read here, before any library parses it, so an oversized or lying length never reaches one.
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        prefix = fh.read(8)
        if len(prefix) < 8:
            raise ArchiveRejected("bad_safetensors", f"{path.name} is too short to be safetensors")
        (header_len,) = struct.unpack("<Q", prefix)
        if header_len > max_header_bytes:
            raise ArchiveRejected("bad_safetensors", f"{path.name}: header of {header_len} bytes is over the cap")
        if header_len < 2 or 8 + header_len > size:
            raise ArchiveRejected("bad_safetensors", f"{path.name}: header length {header_len} does not fit the file")
        raw_header = fh.read(header_len)
    try:
        header = json.loads(raw_header.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ArchiveRejected("bad_safetensors", f"{path.name}: the header is not JSON") from None
    if not isinstance(header, dict):
        raise ArchiveRejected("bad_safetensors", f"{path.name}: the header is not a JSON object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ArchiveRejected("bad_safetensors", f"{path.name}: __metadata__ must map strings to strings")

    spans: list[tuple[int, int, str]] = []
    parameters = 0
    for name, tensor in header.items():
        if not isinstance(tensor, dict) or set(tensor) != {"dtype", "shape", "data_offsets"}:
            raise ArchiveRejected("bad_safetensors", f"{path.name}: tensor {name!r} is malformed")
        dtype, shape, offsets = tensor["dtype"], tensor["shape"], tensor["data_offsets"]
        if dtype not in SAFETENSORS_DTYPE_BITS:
            raise ArchiveRejected("bad_safetensors", f"{path.name}: tensor {name!r} has unknown dtype {dtype!r}")
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise ArchiveRejected("bad_safetensors", f"{path.name}: tensor {name!r} has a bad shape")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(type(o) is int for o in offsets)
            or not 0 <= offsets[0] <= offsets[1]
        ):
            raise ArchiveRejected("bad_safetensors", f"{path.name}: tensor {name!r} has bad data_offsets")
        numel = math.prod(shape)
        if numel * SAFETENSORS_DTYPE_BITS[dtype] != (offsets[1] - offsets[0]) * 8:
            raise ArchiveRejected("bad_safetensors", f"{path.name}: tensor {name!r} size disagrees with its shape")
        parameters += numel
        spans.append((offsets[0], offsets[1], name))

    # The data buffer must be exactly tiled by the tensors: no gaps, no overlaps, nothing hidden after them.
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            raise ArchiveRejected("bad_safetensors", f"{path.name}: tensor {name!r} overlaps or leaves a gap")
        position = end
    if 8 + header_len + position != size:
        raise ArchiveRejected("bad_safetensors", f"{path.name}: the data does not end where the file ends")

    # A second opinion from the reference parser; it only reads the (now bounded) header and mmaps the rest.
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as handle:
            list(handle.keys())
    except Exception as exc:  # noqa: BLE001 - its error types are not part of its API
        raise ArchiveRejected("bad_safetensors", f"{path.name}: {exc}") from None
    return parameters


def _check_directory_listing(root: Path) -> list[Path]:
    files = []
    for item in sorted(root.iterdir()):
        if item.is_symlink():
            raise ArchiveRejected("symlink", f"{item.name} is a symbolic link")
        if not item.is_file():
            raise ArchiveRejected("disallowed_file", f"{item.name} is not a regular file")
        check_file_name(item.name)
        files.append(item)
    return files


def _looks_like_pickle(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(4)
    # Pickle protocols 2-5 start with PROTO; torch.save writes a zip of pickles.
    return (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5) or head == b"PK\x03\x04"


def _check_config(root: Path, kind: str) -> dict[str, Any]:
    config_path = root / "config.json"
    if not config_path.is_file():
        raise ArchiveRejected("missing_config", "the model directory has no config.json")
    config = _load_json(config_path, "bad_config")
    if not isinstance(config, dict):
        raise ArchiveRejected("bad_config", "config.json must be a JSON object")
    # Any of these makes transformers import Python from the checkpoint (or ask to), also inside sub-configs.
    documents = {"config.json": config}
    for name, code in (("tokenizer_config.json", "tokenizer_invalid"), ("generation_config.json", "bad_config")):
        if (root / name).is_file():
            documents[name] = _load_json(root / name, code)
    for name, document in documents.items():
        found = _find_key(document, CONFIG_CODE_KEYS)
        if found:
            raise ArchiveRejected(
                "auto_map" if found == "auto_map" else "custom_code",
                f"{name} has {found}: checkpoints may not bring their own code",
            )
    architectures = config.get("architectures")
    if not isinstance(architectures, list) or not architectures or not all(isinstance(a, str) for a in architectures):
        raise ArchiveRejected("architecture_not_allowed", "config.json must name its architectures")
    allowed = ALLOWED_ARCHITECTURES[kind]
    refused = [name for name in architectures if name not in allowed]
    if refused:
        raise ArchiveRejected(
            "architecture_not_allowed",
            f"{', '.join(refused)} is not allowed for {kind} (allowed: {', '.join(sorted(allowed))})",
        )
    return config


def _check_weights(root: Path, files: list[Path], limits: ArchiveLimits) -> tuple[tuple[str, ...], int]:
    weights = [item for item in files if item.name.endswith(".safetensors")]
    if not weights:
        raise ArchiveRejected("no_weights", "the model directory has no *.safetensors weights")
    parameters = sum(check_safetensors(item, max_header_bytes=limits.max_safetensors_header_bytes) for item in weights)
    index_path = root / "model.safetensors.index.json"
    if index_path.is_file():
        index = _load_json(index_path, "bad_safetensors")
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise ArchiveRejected("bad_safetensors", "model.safetensors.index.json has no weight_map")
        missing = sorted({shard for shard in weight_map.values() if not (root / shard).is_file()})
        if missing or any("/" in shard or "\\" in shard for shard in weight_map.values()):
            raise ArchiveRejected("bad_safetensors", f"the index names shards that are not here: {missing}")
    return tuple(item.name for item in weights), parameters


def _check_tokenizer(root: Path, files: list[Path]) -> str:
    names = {item.name for item in files}
    spm_files = [item for item in files if item.suffix in (".model", ".spm")]
    if not (names & TOKENIZER_VOCAB_NAMES or spm_files):
        raise ArchiveRejected("tokenizer_invalid", "no tokenizer files (tokenizer.json, vocab or sentencepiece model)")
    try:
        import sentencepiece

        for item in spm_files:  # protobuf, parsed by C++: proves the file is what its name says
            sentencepiece.SentencePieceProcessor(model_file=str(item))
    except Exception as exc:  # noqa: BLE001
        raise ArchiveRejected("tokenizer_invalid", f"a sentencepiece model does not load: {exc}") from None
    try:
        from transformers import AutoTokenizer

        # The only load done at intake: tokenizer files are data (JSON, text, protobuf) and no remote code is allowed.
        tokenizer = AutoTokenizer.from_pretrained(str(root), local_files_only=True, trust_remote_code=False)
        if not tokenizer("Hello, world.")["input_ids"]:
            raise ValueError("it produced no tokens")
    except Exception as exc:  # noqa: BLE001 - tokenizer loading fails in many ways on bad input
        raise ArchiveRejected("tokenizer_invalid", f"the tokenizer does not load: {exc}") from None
    return type(tokenizer).__name__


@_boundary
def validate_model_dir(
    model_dir: str | os.PathLike[str], *, kind: str, limits: ArchiveLimits | None = None
) -> ValidatedModel:
    """Check an extracted model directory: files, config, safetensors headers and tokenizer. Loads no weights."""
    if kind not in KINDS:
        raise ArchiveRejected("bad_kind", f"kind must be one of {', '.join(KINDS)}")
    limits = limits or ArchiveLimits()
    root = Path(model_dir)
    files = _check_directory_listing(root)
    for item in files:
        # Safetensors files get the stricter structural check below; this catches pickles wearing other names.
        if not item.name.endswith(".safetensors") and _looks_like_pickle(item):
            raise ArchiveRejected("pickle_weights", f"{item.name} is a pickle in disguise")
    config = _check_config(root, kind)
    weight_files, parameters = _check_weights(root, files, limits)
    tokenizer_class = _check_tokenizer(root, files)
    return ValidatedModel(
        path=root,
        kind=kind,
        architecture=config["architectures"][0],
        model_type=config.get("model_type") if isinstance(config.get("model_type"), str) else None,
        weight_files=weight_files,
        parameter_count=parameters,
        tokenizer_class=tokenizer_class,
        config=config,
    )


def accept_archive(
    path: str | os.PathLike[str],
    dest_dir: str | os.PathLike[str],
    *,
    kind: str,
    limits: ArchiveLimits | None = None,
) -> ValidatedModel:
    """Inspect, extract and validate an upload; on refusal nothing is left in ``dest_dir``."""
    limits = limits or ArchiveLimits()
    manifest = inspect_archive(path, kind=kind, limits=limits)
    dest = extract_safely(path, manifest, dest_dir, limits=limits)
    try:
        return validate_model_dir(dest, kind=kind, limits=limits)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
