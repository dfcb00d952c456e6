"""Fuzzing the intake: whatever the bytes, the only failure is ArchiveRejected, and it never hangs.

Inputs are random bytes (some behind a real zip/gzip magic so they reach the parsers) and valid archives of a
tiny model with bytes flipped, overwritten or cut off; the extracted-directory validator is fuzzed by mutating
one file of a valid model directory.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatsite.checkpoints import ArchiveLimits, ArchiveRejected, accept_archive, validate_model_dir
from tests.checkpoints import builders

# Small caps keep every example fast even when a mutation makes a header claim gigabytes.
LIMITS = ArchiveLimits(max_total_bytes=4 << 20, max_file_bytes=4 << 20, max_entries=50)
FUZZ = settings(max_examples=70, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
PER_EXAMPLE_SECONDS = 10


def valid_archives() -> list[bytes]:
    files = builders.tiny_sentiment_files()
    return [builders.zip_bytes(files), builders.tar_gz_bytes(files, prefix="m/")]


def run_intake(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as temp:
        upload = Path(temp) / "upload"
        upload.write_bytes(data)
        started = time.monotonic()
        try:
            model = accept_archive(upload, Path(temp) / "out", kind="sentiment", limits=LIMITS)
        except ArchiveRejected as exc:
            assert exc.code and exc.code.replace("_", "").isalpha()
            assert not (Path(temp) / "out").exists()
        else:
            assert model.architecture == "BertForSequenceClassification"
        assert time.monotonic() - started < PER_EXAMPLE_SECONDS


@st.composite
def mutated_archive(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(valid_archives())))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "overwrite", "truncate", "insert"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if action == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif action == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[at : at + len(chunk)] = chunk
        elif action == "truncate":
            del data[at:]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        if not data:
            break
    return bytes(data)


@FUZZ
@given(
    magic=st.sampled_from([b"", b"PK\x03\x04", b"PK\x05\x06", b"\x1f\x8b\x08\x00", b"\x1f\x8b"]),
    body=st.binary(max_size=2048),
)
def test_random_bytes_are_only_ever_rejected(magic, body):
    run_intake(magic + body)


@FUZZ
@given(data=mutated_archive())
def test_mutated_archives_are_accepted_or_rejected_cleanly(data):
    run_intake(data)


@st.composite
def mutated_model_dir(draw) -> dict[str, bytes]:
    files = dict(builders.tiny_sentiment_files())
    name = draw(st.sampled_from(sorted(files)))
    data = bytearray(files[name])
    if name == "model.safetensors" and draw(st.booleans()):
        at = draw(st.integers(0, min(len(data) - 1, 400)))  # aim at the length prefix and the JSON header
    else:
        at = draw(st.integers(0, len(data) - 1))
    action = draw(st.sampled_from(["flip", "truncate", "overwrite"]))
    if action == "flip":
        data[at] ^= draw(st.integers(1, 255))
    elif action == "truncate":
        del data[at:]
    else:
        chunk = draw(st.binary(min_size=1, max_size=8))
        data[at : at + len(chunk)] = chunk
    files[name] = bytes(data)
    return files


@FUZZ
@given(files=mutated_model_dir())
def test_mutated_model_directories_are_accepted_or_rejected_cleanly(files):
    with tempfile.TemporaryDirectory() as temp:
        folder = builders.write_dir(Path(temp) / "m", files)
        try:
            validate_model_dir(folder, kind="sentiment", limits=LIMITS)
        except ArchiveRejected as exc:
            assert exc.code
