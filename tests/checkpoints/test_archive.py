"""The checkpoint intake refuses the attack corpus with the right reason, before anything is loaded.

Every archive is built here. Each refusal is checked for its code, for leaving nothing extracted, and (through
the ``sentinel`` fixture) for never having executed the pickles it carries.
"""

from __future__ import annotations

import io
import json
import pickle
import stat
import tarfile
import warnings
import zipfile
from pathlib import Path

import pytest

from chatsite.checkpoints import (
    ALLOWED_ARCHITECTURES,
    ArchiveLimits,
    ArchiveRejected,
    accept_archive,
    check_safetensors,
    extract_safely,
    inspect_archive,
    validate_model_dir,
)
from tests.checkpoints import builders

# MarianTokenizer nags about an optional package on every load; it plays no part in validation.
pytestmark = pytest.mark.filterwarnings("ignore:Recommended. pip install sacremoses")


def write(tmp_path: Path, data: bytes, name: str = "upload.bin") -> Path:
    # A neutral name: the format is sniffed from the bytes, never from the file name.
    path = tmp_path / name
    path.write_bytes(data)
    return path


def refused(path: Path, tmp_path: Path, *, kind: str = "sentiment", limits: ArchiveLimits | None = None) -> str:
    """Run the whole intake, expect a refusal, check nothing was left behind, and return the code."""
    dest = tmp_path / "extracted"
    with pytest.raises(ArchiveRejected) as caught:
        accept_archive(path, dest, kind=kind, limits=limits)
    assert not dest.exists(), "a refused upload left files behind"
    assert caught.value.detail
    return caught.value.code


# ---------------------------------------------------------------------------------------------------- happy path


@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
@pytest.mark.parametrize("prefix", ["", "my-model/", "./"])
def test_tiny_sentiment_model_is_accepted(tmp_path, sentiment_files, sentinel, fmt, prefix):
    maker = builders.zip_bytes if fmt == "zip" else builders.tar_gz_bytes
    path = write(tmp_path, maker(sentiment_files, prefix=prefix))

    manifest = inspect_archive(path, kind="sentiment")
    assert manifest.format == fmt
    assert manifest.prefix == (prefix.strip("./") or None)
    assert sorted(manifest.names) == sorted(sentiment_files)

    dest = extract_safely(path, manifest, tmp_path / "out")
    assert {item.name: item.read_bytes() for item in dest.iterdir()} == sentiment_files

    model = validate_model_dir(dest, kind="sentiment")
    assert model.architecture == "BertForSequenceClassification"
    assert model.weight_files == ("model.safetensors",)
    assert model.parameter_count > 1000
    assert model.tokenizer_class.startswith("Bert")


@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
def test_translation_pipeline_output_is_accepted(tmp_path, translation_files, fmt):
    maker = builders.zip_bytes if fmt == "zip" else builders.tar_gz_bytes
    path = write(tmp_path, maker(translation_files, prefix="opus-tiny/"))
    model = accept_archive(path, tmp_path / "out", kind="translation")
    assert model.architecture == "MarianMTModel"
    assert "source.spm" in {item.name for item in model.path.iterdir()}


def test_the_kind_decides_the_architecture(tmp_path, translation_files):
    path = write(tmp_path, builders.zip_bytes(translation_files))
    assert refused(path, tmp_path, kind="sentiment") == "architecture_not_allowed"


def test_model_card_figures_and_mac_clutter_are_fine(tmp_path, sentiment_files):
    extras = {"README.md": b"# card", "metrics.json": b"{}", "curves.png": b"\x89PNG\r\n\x1a\n"}
    files = [(f"m/{name}", data) for name, data in {**sentiment_files, **extras}.items()]
    files += [("__MACOSX/m/._config.json", b"\x00\x05\x16\x07"), ("m/.DS_Store", b"\x00")]
    path = write(tmp_path, builders.zip_bytes(files))
    manifest = inspect_archive(path, kind="sentiment")
    assert set(manifest.ignored) == {"__MACOSX/m/._config.json", "m/.DS_Store"}
    model = accept_archive(path, tmp_path / "out", kind="sentiment")
    assert sorted(item.name for item in model.path.iterdir()) == sorted({**sentiment_files, **extras})


def test_every_allowed_architecture_is_a_real_transformers_class():
    import transformers

    for names in ALLOWED_ARCHITECTURES.values():
        for name in names:
            assert hasattr(transformers, name), name


# ---------------------------------------------------------------------------------------------------- pickles


def test_the_pickle_payload_is_armed(tmp_path):
    """Proof the corpus is dangerous: unpickling it (here, on purpose) runs its code."""
    target = tmp_path / "armed"
    pickle.loads(builders.evil_pickle(target))  # noqa: S301 - the point of this test
    assert target.exists()


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt", "model.ckpt", "weights.pkl", "my-model/model.pth"])
@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
def test_pickle_weights_are_refused(tmp_path, sentiment_files, sentinel, name, fmt):
    maker = builders.zip_bytes if fmt == "zip" else builders.tar_gz_bytes
    files = (
        [(f"my-model/{key}", value) for key, value in sentiment_files.items()]
        if "/" in name
        else list(sentiment_files.items())
    )
    path = write(tmp_path, maker([*files, (name, builders.evil_pickle(sentinel))]))
    assert refused(path, tmp_path) == "pickle_weights"


def test_torch_saved_file_is_refused(tmp_path, sentiment_files, sentinel):
    weights = {k: v for k, v in sentiment_files.items() if k != "model.safetensors"}
    path = write(tmp_path, builders.zip_bytes({**weights, "model.pt": builders.evil_torch_file(sentinel)}))
    assert refused(path, tmp_path) == "pickle_weights"


@pytest.mark.parametrize("payload", ["pickle", "torch"])
def test_pickle_disguised_as_safetensors_fails_the_header_check(tmp_path, sentiment_files, sentinel, payload):
    data = builders.evil_pickle(sentinel) if payload == "pickle" else builders.evil_torch_file(sentinel)
    path = write(tmp_path, builders.tar_gz_bytes({**sentiment_files, "model.safetensors": data}))
    inspect_archive(path, kind="sentiment")  # the name is allowed: only the content can tell
    assert refused(path, tmp_path) == "bad_safetensors"


def test_pickle_disguised_as_a_sentencepiece_model_is_refused(tmp_path, sentiment_files, sentinel):
    path = write(tmp_path, builders.zip_bytes({**sentiment_files, "spiece.model": builders.evil_pickle(sentinel)}))
    assert refused(path, tmp_path) == "pickle_weights"


def test_a_directory_with_a_pickle_is_refused_even_without_an_archive(tmp_path, sentiment_files, sentinel):
    folder = builders.write_dir(tmp_path / "m", {**sentiment_files, "model.bin": builders.evil_pickle(sentinel)})
    with pytest.raises(ArchiveRejected) as caught:
        validate_model_dir(folder, kind="sentiment")
    assert caught.value.code == "pickle_weights"


# ---------------------------------------------------------------------------------------------------- remote code


def test_auto_map_with_a_python_module_is_refused(tmp_path, sentiment_files, sentinel):
    files = builders.config_with(sentiment_files, auto_map={"AutoModel": "modeling_x.XModel"})
    code = f"open({str(sentinel)!r}, 'w')\n".encode()
    path = write(tmp_path, builders.zip_bytes({**files, "modeling_x.py": code}))
    assert refused(path, tmp_path) == "custom_code"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"auto_map": {"AutoModelForSequenceClassification": "modeling_x.X"}}, "auto_map"),
        ({"text_config": {"auto_map": {"AutoConfig": "x.Y"}}}, "auto_map"),
        ({"custom_pipelines": {"x": {"impl": "x.P"}}}, "custom_code"),
        ({"trust_remote_code": True}, "custom_code"),
        ({"architectures": ["GPT2LMHeadModel"]}, "architecture_not_allowed"),
        ({"architectures": ["BertForSequenceClassification", "EvilModel"]}, "architecture_not_allowed"),
        ({"architectures": None}, "architecture_not_allowed"),
    ],
)
def test_config_refusals(tmp_path, sentiment_files, change, code):
    path = write(tmp_path, builders.tar_gz_bytes(builders.config_with(sentiment_files, **change)))
    assert refused(path, tmp_path) == code


def test_tokenizer_config_auto_map_is_refused(tmp_path, sentiment_files):
    tokenizer_config = json.loads(sentiment_files["tokenizer_config.json"])
    tokenizer_config["auto_map"] = {"AutoTokenizer": ["tok.Evil", None]}
    files = {**sentiment_files, "tokenizer_config.json": json.dumps(tokenizer_config).encode()}
    assert refused(write(tmp_path, builders.zip_bytes(files)), tmp_path) == "auto_map"


@pytest.mark.parametrize("config", [b"", b"[1, 2]", b"{not json", b"\xff\xfe"])
def test_unreadable_config_is_refused(tmp_path, sentiment_files, config):
    path = write(tmp_path, builders.zip_bytes({**sentiment_files, "config.json": config}))
    assert refused(path, tmp_path) == "bad_config"


def test_missing_config_and_weights(tmp_path, sentiment_files):
    no_config = {k: v for k, v in sentiment_files.items() if k != "config.json"}
    assert refused(write(tmp_path, builders.zip_bytes(no_config)), tmp_path) == "missing_config"
    no_weights = {k: v for k, v in sentiment_files.items() if k != "model.safetensors"}
    assert refused(write(tmp_path, builders.zip_bytes(no_weights), "b"), tmp_path) == "no_weights"


# ---------------------------------------------------------------------------------------------------- tokenizer


def test_missing_tokenizer_is_refused(tmp_path, sentiment_files):
    files = {k: v for k, v in sentiment_files.items() if not k.startswith("tokenizer")}
    assert refused(write(tmp_path, builders.zip_bytes(files)), tmp_path) == "tokenizer_invalid"


@pytest.mark.parametrize("tokenizer", [b"{}", b"{broken", json.dumps({"model": {"type": "Nope"}}).encode()])
def test_broken_tokenizer_is_refused(tmp_path, sentiment_files, tokenizer):
    path = write(tmp_path, builders.zip_bytes({**sentiment_files, "tokenizer.json": tokenizer}))
    assert refused(path, tmp_path) == "tokenizer_invalid"


def test_broken_sentencepiece_model_is_refused(tmp_path, translation_files):
    path = write(tmp_path, builders.zip_bytes({**translation_files, "source.spm": b"\x0a\x03abc not protobuf"}))
    assert refused(path, tmp_path, kind="translation") == "tokenizer_invalid"


# ---------------------------------------------------------------------------------------------------- safetensors


def _tensor_header(**tensors):
    return {name: {"dtype": "F32", "shape": [n], "data_offsets": [a, b]} for name, (n, a, b) in tensors.items()}


@pytest.mark.parametrize(
    ("data", "limit"),
    [
        pytest.param(
            builders.safetensors_bytes(_tensor_header(w=(2, 0, 8)), b"\0" * 8, declared_length=2**40),
            None,
            id="length-past-the-file",
        ),
        pytest.param(builders.safetensors_bytes(_tensor_header(w=(2, 0, 8)), b"\0" * 8), 16, id="header-over-cap"),
        pytest.param(b"\x05\x00\x00", None, id="too-short"),
        pytest.param(builders.safetensors_bytes({"w": [1]}, b""), None, id="tensor-not-an-object"),
        pytest.param(builders.safetensors_bytes(_tensor_header(w=(2, 0, 8)), b"\0" * 4), None, id="data-truncated"),
        pytest.param(
            builders.safetensors_bytes(_tensor_header(w=(2, 0, 8)), b"\0" * 12), None, id="bytes-hidden-after"
        ),
        pytest.param(
            builders.safetensors_bytes(_tensor_header(w=(2, 0, 8), v=(2, 4, 12)), b"\0" * 12), None, id="overlap"
        ),
        pytest.param(builders.safetensors_bytes(_tensor_header(w=(2, 4, 12)), b"\0" * 12), None, id="gap"),
        pytest.param(builders.safetensors_bytes(_tensor_header(w=(3, 0, 8)), b"\0" * 8), None, id="shape-vs-size"),
        pytest.param(
            builders.safetensors_bytes({"w": {"dtype": "OBJ", "shape": [1], "data_offsets": [0, 1]}}, b"\0"),
            None,
            id="unknown-dtype",
        ),
        pytest.param(
            builders.safetensors_bytes({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}}, b""),
            None,
            id="negative-shape",
        ),
        pytest.param(builders.safetensors_bytes({"__metadata__": {"a": 1}}, b""), None, id="metadata-not-strings"),
        pytest.param(b"\x04\x00\x00\x00\x00\x00\x00\x00[1] ", None, id="header-not-an-object"),
    ],
)
def test_bad_safetensors_headers(tmp_path, data, limit):
    path = write(tmp_path, data, "model.safetensors")
    with pytest.raises(ArchiveRejected) as caught:
        check_safetensors(path, **({"max_header_bytes": limit} if limit else {}))
    assert caught.value.code == "bad_safetensors"


def test_consistent_safetensors_header_passes(tmp_path):
    header = {"__metadata__": {"format": "pt"}, **_tensor_header(w=(2, 0, 8), v=(1, 8, 12))}
    path = write(tmp_path, builders.safetensors_bytes(header, b"\0" * 12), "model.safetensors")
    assert check_safetensors(path) == 3


def test_oversized_safetensors_header_in_an_archive(tmp_path, sentiment_files):
    bad = builders.safetensors_bytes(_tensor_header(w=(2, 0, 8)), b"\0" * 8, declared_length=17 * 2**20)
    path = write(tmp_path, builders.zip_bytes({**sentiment_files, "model.safetensors": bad}))
    assert refused(path, tmp_path) == "bad_safetensors"


def test_sharded_index_must_point_at_present_shards(tmp_path, sentiment_files):
    index = {"metadata": {}, "weight_map": {"bert.x": "model-00002-of-00002.safetensors"}}
    files = {**sentiment_files, "model.safetensors.index.json": json.dumps(index).encode()}
    assert refused(write(tmp_path, builders.zip_bytes(files)), tmp_path) == "bad_safetensors"


# ---------------------------------------------------------------------------------------------------- paths and links


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("../evil", "path_traversal"),
        ("my-model/../../evil", "path_traversal"),
        ("..\\evil", "path_traversal"),
        ("/etc/x", "absolute_path"),
        ("\\\\server\\share\\x", "absolute_path"),
        ("C:\\x", "absolute_path"),
        ("C:/x", "absolute_path"),
    ],
)
@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
def test_escaping_paths_are_refused(tmp_path, sentiment_files, name, code, fmt):
    maker = builders.zip_bytes if fmt == "zip" else builders.tar_gz_bytes
    path = write(tmp_path, maker([*sentiment_files.items(), (name, b"owned")]))
    assert refused(path, tmp_path) == code
    assert not (tmp_path.parent / "evil").exists()


@pytest.mark.parametrize(
    ("kind", "code"), [(tarfile.SYMTYPE, "symlink"), (tarfile.LNKTYPE, "hardlink")], ids=["symlink", "hardlink"]
)
@pytest.mark.parametrize("target", ["/etc/passwd", "../../x", "model.safetensors"])
def test_tar_links_are_refused(tmp_path, sentiment_files, kind, code, target):
    files = {k: v for k, v in sentiment_files.items() if k != "tokenizer.json"}
    link = builders.tar_link("tokenizer.json", target, kind)
    path = write(tmp_path, builders.tar_gz_bytes(files, extra=[link]))
    assert refused(path, tmp_path) == code


def test_zip_symlink_is_refused(tmp_path, sentiment_files):
    data = builders.zip_with_info(sentiment_files, builders.zip_symlink_info("vocab.txt"), b"/etc/passwd")
    assert refused(write(tmp_path, data), tmp_path) == "symlink"


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_tar_device_files_are_refused(tmp_path, sentiment_files, kind):
    device = tarfile.TarInfo("vocab.txt")
    device.type = kind
    device.devmajor, device.devminor = 1, 3  # /dev/null
    path = write(tmp_path, builders.tar_gz_bytes(sentiment_files, extra=[device]))
    assert refused(path, tmp_path) == "special_file"


def test_zip_device_file_is_refused(tmp_path, sentiment_files):
    info = zipfile.ZipInfo("vocab.txt")
    info.create_system = 3
    info.external_attr = (stat.S_IFCHR | 0o666) << 16
    assert refused(write(tmp_path, builders.zip_with_info(sentiment_files, info, b"")), tmp_path) == "special_file"


@pytest.mark.parametrize("duplicate", ["config.json", "CONFIG.json"])
def test_duplicate_names_are_refused(tmp_path, sentiment_files, duplicate):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate we are making on purpose
        data = builders.zip_bytes([*sentiment_files.items(), (duplicate, b"{}")])
    code = refused(write(tmp_path, data), tmp_path)
    # "CONFIG.json" is not an allowed name anyway; either way it never overwrites config.json.
    assert code in ({"duplicate_entry"} if duplicate == "config.json" else {"duplicate_entry", "disallowed_file"})


@pytest.mark.parametrize(
    "name", ["train.sh", "notes.txt", "model.onnx", "tf_model.h5", "flax_model.msgpack", "x.so", "sub/config.json"]
)
def test_files_off_the_allow_list_are_refused(tmp_path, sentiment_files, name):
    code = refused(write(tmp_path, builders.zip_bytes([*sentiment_files.items(), (name, b"x")])), tmp_path)
    assert code in {"disallowed_file", "pickle_weights", "custom_code"}
    assert code == {
        ".h5": "pickle_weights",
        ".msgpack": "pickle_weights",
        ".so": "custom_code",
        ".sh": "custom_code",
    }.get(Path(name).suffix, "disallowed_file")


def test_two_top_level_folders_are_refused(tmp_path, sentiment_files):
    files = [(f"a/{k}", v) for k, v in sentiment_files.items()] + [("b/README.md", b"x")]
    assert refused(write(tmp_path, builders.zip_bytes(files)), tmp_path) == "disallowed_file"


# ---------------------------------------------------------------------------------------------------- sizes and bombs


def test_zip_bomb_is_refused_from_its_directory(tmp_path, sentiment_files):
    bomb = builders.zip_bytes({**sentiment_files, "model-00002-of-00002.safetensors": b"\0" * (8 << 20)})
    assert len(bomb) < 100_000
    path = write(tmp_path, bomb)
    with pytest.raises(ArchiveRejected) as caught:
        inspect_archive(path, kind="sentiment")
    assert caught.value.code == "compression_ratio"


def test_tar_gz_bomb_is_stopped_while_streaming(tmp_path, sentiment_files):
    bomb = builders.tar_gz_bytes({**sentiment_files, "model-00002-of-00002.safetensors": b"\0" * (8 << 20)})
    path = write(tmp_path, bomb)
    assert refused(path, tmp_path) == "compression_ratio"
    low = ArchiveLimits(max_total_bytes=1 << 20, max_ratio=10_000)
    assert refused(path, tmp_path, limits=low) == "too_large"


def test_extraction_counts_what_it_writes(tmp_path, sentiment_files):
    """Headers can lie: extraction enforces the caps again on the bytes it actually writes, and cleans up."""
    path = write(tmp_path, builders.tar_gz_bytes(sentiment_files))
    manifest = inspect_archive(path, kind="sentiment")
    tight = ArchiveLimits(max_total_bytes=manifest.total_size - 1)
    with pytest.raises(ArchiveRejected) as caught:
        extract_safely(path, manifest, tmp_path / "out", limits=tight)
    assert caught.value.code == "too_large"
    assert not (tmp_path / "out").exists()


def test_archive_swapped_after_inspection_is_refused(tmp_path, sentiment_files, sentinel):
    path = write(tmp_path, builders.zip_bytes(sentiment_files))
    manifest = inspect_archive(path, kind="sentiment")
    path.write_bytes(builders.zip_bytes({**sentiment_files, "model.safetensors": builders.evil_pickle(sentinel)}))
    with pytest.raises(ArchiveRejected) as caught:
        extract_safely(path, manifest, tmp_path / "out")
    assert caught.value.code == "archive_changed"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
def test_too_many_entries(tmp_path, sentiment_files, fmt):
    maker = builders.zip_bytes if fmt == "zip" else builders.tar_gz_bytes
    path = write(tmp_path, maker({**sentiment_files, **{f"x{i}.png": b"" for i in range(10)}}))
    assert refused(path, tmp_path, limits=ArchiveLimits(max_entries=8)) == "too_many_entries"


def test_per_file_and_upload_caps(tmp_path, sentiment_files):
    path = write(tmp_path, builders.zip_bytes(sentiment_files))
    assert refused(path, tmp_path, limits=ArchiveLimits(max_file_bytes=1000)) == "too_large"
    assert refused(path, tmp_path, limits=ArchiveLimits(max_compressed_bytes=1000)) == "too_large"


# ---------------------------------------------------------------------------------------------------- not archives


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty"),
        (b"PK\x05\x06" + b"\0" * 18, "empty"),
        (bytes(range(256)) * 16, "not_an_archive"),
        (b"%PDF-1.7 not a model", "not_an_archive"),
        (b"\x1f\x8b\x08\x00garbage-after-the-gzip-magic", "corrupt_archive"),
        (b"PK\x03\x04" + b"\xff" * 100, "corrupt_archive"),
    ],
    ids=["empty-file", "empty-zip", "random-bytes", "pdf", "bad-gzip", "bad-zip"],
)
def test_not_archives(tmp_path, data, code):
    assert refused(write(tmp_path, data, "model.zip"), tmp_path) == code


def test_gzip_of_something_else_is_refused(tmp_path):
    import gzip

    assert refused(write(tmp_path, gzip.compress(b'{"a": 1}' * 100)), tmp_path) == "corrupt_archive"


def test_empty_tar_gz_is_refused(tmp_path):
    buffer = io.BytesIO()
    tarfile.open(fileobj=buffer, mode="w:gz").close()
    assert refused(write(tmp_path, buffer.getvalue()), tmp_path) == "empty"


def test_unknown_kind_is_refused(tmp_path, sentiment_files):
    path = write(tmp_path, builders.zip_bytes(sentiment_files))
    assert refused(path, tmp_path, kind="vision") == "bad_kind"


def test_the_validator_is_framework_free():
    """Workers and scripts use it without Django: the module imports only the stdlib at its top level."""
    import ast

    import chatsite.checkpoints.archive as module

    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import) for alias in node.names
    } | {node.module.split(".")[0] for node in tree.body if isinstance(node, ast.ImportFrom) and node.module}
    assert not imported - set(__import__("sys").stdlib_module_names) - {"__future__"}
