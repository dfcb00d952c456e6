"""Shared plumbing for the fine-tuning pipelines (translation and sentiment).

Framework-free: data files in, artifacts out. Nothing here knows about a particular model kind; the
pipelines pass in their column names, checks and figures.

Public API (kept stable, the sentiment pipeline imports it):

- ``read_records(path, required, optional=(), check=None) -> list[Record]`` and ``DataError``
- ``split_records(records, *, seed, ratios=(0.8, 0.1, 0.1), stratify_by=None) -> Splits``
- ``atomic_output_dir(out, *, overwrite=False)`` context manager yielding a temp dir renamed to ``out`` on success
- ``write_metrics(out_dir, metrics)``, ``write_model_card(out_dir, ...)``, ``plot_curves(log_history, path)``
- ``mixed_precision_flags()`` and ``EpochLogCallback`` for transformers' Trainer
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SPLIT_NAMES = ("train", "validation", "test")
# Spellings people actually use in a split column, mapped to ours.
_SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "test": "test",
    "eval": "test",
}


class DataError(ValueError):
    """A problem with a data file, pointing at the file and (when known) the 1-based line."""

    def __init__(self, message: str, *, path: str | os.PathLike[str] | None = None, line: int | None = None):
        self.path = str(path) if path is not None else None
        self.line = line
        self.reason = message
        where = self.path or "<data>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Record:
    """One example: its 1-based line in the file and its column values.

    Required columns are non-empty stripped strings; optional columns are None when absent or blank
    (TSV values are strings, JSONL values keep their JSON type).
    """

    line: int
    values: Mapping[str, Any]
    split: str | None = None

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        value = self.values.get(key)
        return default if value is None else value


@dataclass
class Splits:
    train: list[Record] = field(default_factory=list)
    validation: list[Record] = field(default_factory=list)
    test: list[Record] = field(default_factory=list)
    from_file: bool = False  # True when the data file's `split` column decided it

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}


def _file_format(path: Path) -> str:
    suffixes = "".join(path.suffixes).lower()
    if suffixes.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if suffixes.endswith((".tsv", ".tab", ".txt")):
        return "tsv"
    raise DataError("unknown data format: use a .tsv (with a header row) or a .jsonl file", path=path)


def _raw_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, row dict) from a TSV or JSONL file, skipping blank lines."""
    fmt = _file_format(path)
    with path.open(encoding="utf-8", newline="") as handle:
        if fmt == "jsonl":
            for number, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    row = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise DataError(f"invalid JSON: {exc.msg}", path=path, line=number) from None
                if not isinstance(row, dict):
                    raise DataError("each line must be a JSON object", path=path, line=number)
                yield number, row
            return
        # QUOTE_NONE: chat text is full of quote characters that are not CSV quoting.
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header: list[str] | None = None
        for row in reader:
            number = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = [cell.strip().lower() for cell in row]
                continue
            if len(row) > len(header):
                raise DataError(
                    f"{len(row)} tab-separated fields but the header has {len(header)}", path=path, line=number
                )
            yield number, dict(zip(header, row, strict=False))


def read_records(
    path: str | os.PathLike[str],
    required: Sequence[str] = ("source", "target"),
    optional: Sequence[str] = (),
    check: Callable[[Record], str | None] | None = None,
) -> list[Record]:
    """Read a TSV (header row) or JSONL data file into records, validating as it goes.

    ``check`` gets each record and returns an error message (or None); it is where a pipeline puts its own
    rules (source == target, unknown label). A column named ``split`` is read when present. Raises DataError
    with the line number for the first problem found.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", path=path)
    records: list[Record] = []
    wanted = tuple(required) + tuple(name for name in optional if name not in required)
    for number, row in _raw_rows(path):
        row = {str(key).strip().lower(): value for key, value in row.items()}
        missing = [name for name in required if name not in row]
        if missing:
            raise DataError(
                f"missing column(s) {', '.join(missing)} (found: {', '.join(sorted(row)) or 'none'})",
                path=path,
                line=number,
            )
        values: dict[str, Any] = {}
        for name in required:
            value = row[name]
            if not isinstance(value, str):
                raise DataError(f"column {name!r} must be text, got {type(value).__name__}", path=path, line=number)
            if not value.strip():
                raise DataError(f"empty {name!r}", path=path, line=number)
            values[name] = value.strip()
        for name in wanted[len(required) :]:
            value = row.get(name)
            if isinstance(value, str):
                value = value.strip() or None
            values[name] = value
        split = _parse_split(row.get("split"), path=path, line=number)
        record = Record(line=number, values=values, split=split)
        if check is not None:
            problem = check(record)
            if problem:
                raise DataError(problem, path=path, line=number)
        records.append(record)
    if not records:
        raise DataError("no examples in file (empty file or header only)", path=path)
    with_split = sum(record.split is not None for record in records)
    if 0 < with_split < len(records):
        first = next(record for record in records if record.split is None)
        raise DataError("split column is set on some lines but not this one", path=path, line=first.line)
    return records


def _parse_split(value: Any, *, path: Path, line: int) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    name = _SPLIT_ALIASES.get(str(value).strip().lower())
    if name is None:
        raise DataError(f"unknown split {value!r} (use train, validation or test)", path=path, line=line)
    return name


def split_records(
    records: Sequence[Record],
    *,
    seed: int = 13,
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
    stratify_by: str | None = None,
) -> Splits:
    """Split into train/validation/test: by the file's split column when present, else seeded and fixed.

    ``stratify_by`` keeps label proportions in every split (falls back to a plain shuffle when a class is too
    rare to stratify). Validation and test get at least one example each when there are three or more.
    """
    if records and records[0].split is not None:
        splits = Splits(from_file=True)
        for record in records:
            getattr(splits, record.split).append(record)
        if not splits.train:
            raise DataError("the split column marks no training examples")
        return splits
    if len(records) < 3:
        raise DataError(f"need at least 3 examples to split into train/validation/test, got {len(records)}")
    if any(ratio < 0 for ratio in ratios) or not math.isclose(sum(ratios), 1.0, abs_tol=1e-6):
        raise ValueError(f"split ratios must be non-negative and sum to 1, got {ratios}")
    from sklearn.model_selection import train_test_split

    total = len(records)
    n_test = max(1, round(total * ratios[2]))
    n_val = max(1, round(total * ratios[1]))
    indices = list(range(total))
    labels = [records[i].get(stratify_by) for i in indices] if stratify_by else None

    def _cut(pool: list[int], size: int, pool_labels: list[Any] | None) -> tuple[list[int], list[int]]:
        try:
            return train_test_split(pool, test_size=size, random_state=seed, stratify=pool_labels)
        except ValueError:  # a class with a single member, or fewer test slots than classes
            return train_test_split(pool, test_size=size, random_state=seed)

    rest, test = _cut(indices, n_test, labels)
    rest_labels = [labels[i] for i in rest] if labels else None
    train, validation = _cut(rest, n_val, rest_labels)
    return Splits(
        train=[records[i] for i in sorted(train)],
        validation=[records[i] for i in sorted(validation)],
        test=[records[i] for i in sorted(test)],
    )


@contextlib.contextmanager
def atomic_output_dir(out: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temp dir beside ``out``; on success it becomes ``out``, on any error it is removed.

    Readers of ``out`` therefore never see a half-written checkpoint. An existing non-empty ``out`` is an
    error unless ``overwrite`` (then it is replaced only after the new one is complete).
    """
    out = Path(out).resolve()
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty (pass overwrite to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    # Same parent directory: the final rename stays on one filesystem and is atomic.
    temp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        yield temp
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
    temp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):  # numpy / torch scalars
        return _jsonable(value.item())
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def write_metrics(out_dir: str | os.PathLike[str], metrics: Mapping[str, Any]) -> Path:
    """Write ``metrics.json`` (numpy/torch scalars converted, NaN as null)."""
    path = Path(out_dir) / "metrics.json"
    path.write_text(json.dumps(_jsonable(metrics), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _markdown_block(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        lines = ["| | |", "|---|---|"]
        for key, item in value.items():
            if isinstance(item, float):
                item = f"{item:.4g}"
            elif isinstance(item, (Mapping, list, tuple)):
                item = json.dumps(_jsonable(item), ensure_ascii=False)
            lines.append(f"| {key} | {item} |")
        return "\n".join(lines)
    if isinstance(value, (list, tuple)):
        return "\n".join(f"- {item}" for item in value)
    return str(value)


def write_model_card(
    out_dir: str | os.PathLike[str],
    *,
    title: str,
    summary: str,
    base_model: str,
    data: Mapping[str, Any],
    hyperparameters: Mapping[str, Any],
    metrics: Mapping[str, Any],
    languages: Sequence[str] = (),
    pipeline_tag: str | None = None,
    extra_sections: Mapping[str, Any] | None = None,
) -> Path:
    """Write a Hugging Face style ``README.md`` model card (front matter + sections)."""
    front = ["---", "library_name: transformers"]
    if languages:
        front.append("language:")
        front.extend(f"- {code}" for code in languages)
    if pipeline_tag:
        front.append(f"pipeline_tag: {pipeline_tag}")
    front.append("---")
    sections: dict[str, Any] = {
        "Base model": base_model,
        "Data": data,
        "Training hyper-parameters": hyperparameters,
        "Evaluation": metrics,
        **(extra_sections or {}),
    }
    created = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = ["\n".join(front), f"# {title}", summary, f"Created: {created}"]
    parts += [f"## {name}\n\n{_markdown_block(body)}" for name, body in sections.items()]
    path = Path(out_dir) / "README.md"
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return path


_NOT_CURVES = ("runtime", "per_second", "epoch", "step", "total_flos", "learning_rate", "grad_norm")


def plot_curves(log_history: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> Path | None:
    """Plot training loss and every validation figure from a Trainer ``log_history`` against the step.

    Returns None (and writes nothing) when the history holds nothing to plot.
    """
    train = [(entry["step"], entry["loss"]) for entry in log_history if "loss" in entry and "step" in entry]
    eval_keys = sorted(
        {
            key
            for entry in log_history
            for key in entry
            if key.startswith("eval_") and not any(part in key for part in _NOT_CURVES)
        }
    )
    if not train and not eval_keys:
        return None
    import matplotlib

    matplotlib.use("Agg")  # headless: workers and CI have no display
    import matplotlib.pyplot as plt

    loss_keys = [key for key in eval_keys if key.endswith("loss")]
    score_keys = [key for key in eval_keys if key not in loss_keys]
    panels = 2 if score_keys else 1
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4), squeeze=False)
    loss_ax = axes[0][0]
    if train:
        loss_ax.plot(*zip(*train, strict=True), label="train loss")
    for key in loss_keys:
        points = [(entry["step"], entry[key]) for entry in log_history if key in entry]
        loss_ax.plot(*zip(*points, strict=True), marker="o", label=key.replace("eval_", "validation "))
    loss_ax.set_xlabel("step")
    loss_ax.set_ylabel("loss")
    loss_ax.legend()
    loss_ax.grid(alpha=0.3)
    if score_keys:
        score_ax = axes[0][1]
        for key in score_keys:
            points = [(entry["step"], entry[key]) for entry in log_history if key in entry]
            score_ax.plot(*zip(*points, strict=True), marker="o", label=key.replace("eval_", "validation "))
        score_ax.set_xlabel("step")
        score_ax.set_ylabel("score")
        score_ax.legend()
        score_ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def mixed_precision_flags(precision: str = "auto") -> dict[str, bool]:
    """TrainingArguments flags for ``precision`` auto|fp32|fp16|bf16 (auto: bf16 if supported else fp16; CUDA only)."""
    import torch

    if precision == "fp32" or not torch.cuda.is_available():
        return {"fp16": False, "bf16": False}
    if precision == "auto":
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if precision not in ("fp16", "bf16"):
        raise ValueError(f"unknown precision {precision!r} (use auto, fp32, fp16 or bf16)")
    return {"fp16": precision == "fp16", "bf16": precision == "bf16"}


def _epoch_log_callback_class() -> type:
    from transformers import TrainerCallback

    class EpochLogCallback(TrainerCallback):
        """Print one line per evaluation with the validation figures (the progress bar shows the loss)."""

        def __init__(self, printer: Callable[[str], None] = print):
            self.printer = printer

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):  # noqa: ANN001 (Trainer API)
            if not metrics:
                return
            shown = ", ".join(
                f"{key.removeprefix('eval_')}={value:.4f}" if isinstance(value, float) else f"{key}={value}"
                for key, value in metrics.items()
                if key.startswith("eval_") and not any(part in key for part in ("runtime", "per_second"))
            )
            epoch = f"{state.epoch:.2f}" if state.epoch is not None else "?"
            self.printer(f"epoch {epoch} step {state.global_step}: {shown}")

    return EpochLogCallback


def __getattr__(name: str) -> Any:
    # EpochLogCallback subclasses a transformers class: build it on first use so importing this module
    # (for reading data) does not import transformers.
    if name == "EpochLogCallback":
        cls = _epoch_log_callback_class()
        globals()[name] = cls
        return cls
    raise AttributeError(name)
