"""``finetune sentiment`` command-line options, framework-free (the Django command only wraps these).

python manage.py finetune sentiment --data FILE|DIR --base DIR --out DIR [--epochs N] [--seed S] [...]
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path
from typing import Any

from .finetune import FREEZE_CHOICES, SELECTION_METRICS, FinetuneConfig, finetune_sentiment

_DEFAULTS = FinetuneConfig()

# option dest -> FinetuneConfig field, for the options that map one to one.
_CONFIG_OPTIONS = {
    "epochs": "epochs",
    "learning_rate": "learning_rate",
    "batch_size": "batch_size",
    "gradient_accumulation": "gradient_accumulation",
    "weight_decay": "weight_decay",
    "warmup_ratio": "warmup_ratio",
    "max_grad_norm": "max_grad_norm",
    "dropout": "dropout",
    "max_length": "max_length",
    "freeze": "freeze",
    "freeze_layers": "freeze_layers",
    "patience": "early_stopping_patience",
    "selection_metric": "selection_metric",
    "average_epochs": "average_epochs",
    "average_gate": "average_gate",
    "data_order_seed": "data_order_seed",
    "soup_order_seeds": "soup_order_seeds",
    "precision": "precision",
    "seed": "seed",
    "validation_fraction": "validation_fraction",
    "hostile_threshold": "hostile_threshold",
}
assert set(_CONFIG_OPTIONS.values()) <= {f.name for f in fields(FinetuneConfig)}


def _seed_list(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {value!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``finetune sentiment`` options to ``parser`` (argparse or Django's CommandParser)."""
    parser.add_argument(
        "--data",
        required=True,
        help="TSV/JSONL file, or a directory of them (text, emotion[, language, hostile, split])",
    )
    parser.add_argument(
        "--base", required=True, help="base Hugging Face checkpoint directory (e.g. the imported e5 encoder)"
    )
    parser.add_argument("--out", required=True, help="output directory (written atomically)")
    parser.add_argument("--epochs", type=float, default=_DEFAULTS.epochs)
    parser.add_argument("--seed", type=int, default=_DEFAULTS.seed)
    parser.add_argument("--lr", dest="learning_rate", type=float, default=_DEFAULTS.learning_rate)
    parser.add_argument("--batch-size", type=int, default=_DEFAULTS.batch_size)
    parser.add_argument("--grad-accum", dest="gradient_accumulation", type=int, default=_DEFAULTS.gradient_accumulation)
    parser.add_argument("--weight-decay", type=float, default=_DEFAULTS.weight_decay)
    parser.add_argument("--warmup-ratio", type=float, default=_DEFAULTS.warmup_ratio)
    parser.add_argument("--max-grad-norm", type=float, default=_DEFAULTS.max_grad_norm)
    parser.add_argument("--dropout", type=float, default=_DEFAULTS.dropout)
    parser.add_argument("--max-length", type=int, default=_DEFAULTS.max_length)
    parser.add_argument("--freeze", choices=FREEZE_CHOICES, default=_DEFAULTS.freeze)
    parser.add_argument(
        "--freeze-layers",
        type=int,
        default=_DEFAULTS.freeze_layers,
        help="also freeze N lower encoder layers",
    )
    parser.add_argument("--no-class-weights", dest="class_weights", action="store_false", help="plain, unweighted loss")
    parser.add_argument(
        "--patience",
        type=int,
        default=_DEFAULTS.early_stopping_patience,
        help="early-stopping patience (epochs; 0: train every epoch and keep the best)",
    )
    parser.add_argument("--selection-metric", choices=SELECTION_METRICS, default=_DEFAULTS.selection_metric)
    parser.add_argument(
        "--average-epochs",
        type=int,
        default=_DEFAULTS.average_epochs,
        help="average the weights of N epochs ending at the best one, kept when validation agrees (1: off)",
    )
    parser.add_argument(
        "--average-always",
        dest="average_gate",
        action="store_false",
        default=None,
        help="keep the --average-epochs mean even when validation prefers the best epoch alone",
    )
    parser.add_argument(
        "--data-order-seed",
        type=int,
        default=_DEFAULTS.data_order_seed,
        help="seed of the data order and dropout (default: --seed, which also seeds the head and validation slice)",
    )
    parser.add_argument(
        "--soup-order-seeds",
        type=_seed_list,
        default=_DEFAULTS.soup_order_seeds,
        help="comma-separated data-order seeds: one run each, then the mean of their weights (e.g. 13,7)",
    )
    parser.add_argument(
        "--member-processes",
        type=int,
        default=1,
        help="train this many soup members at once, each in its own process (1: one after the other)",
    )
    parser.add_argument("--precision", choices=("auto", "fp32", "fp16", "bf16"), default=_DEFAULTS.precision)
    parser.add_argument("--validation-fraction", type=float, default=_DEFAULTS.validation_fraction)
    parser.add_argument("--hostile-threshold", type=float, default=_DEFAULTS.hostile_threshold)
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run from its last saved state")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def run(options: dict[str, Any]) -> dict[str, Any]:
    """Run a fine-tune from parsed options (extra keys, such as Django's verbosity, are ignored).

    Returns the metrics (also in ``<out>/metrics.json``). Raises ``DataError`` (bad data, with the line),
    ``FileNotFoundError`` / ``FileExistsError`` (paths) or ``ValueError`` (bad option values).
    """
    config = FinetuneConfig(
        **{field: options[dest] for dest, field in _CONFIG_OPTIONS.items() if options.get(dest) is not None},
        class_weights=options.get("class_weights", True),
    )
    return finetune_sentiment(
        Path(options["data"]),
        Path(options["base"]),
        Path(options["out"]),
        config=config,
        resume=bool(options.get("resume")),
        overwrite=bool(options.get("overwrite")),
        progress=options.get("progress", True),
        member_processes=int(options.get("member_processes") or 1),
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m sentiment.training.cli ...``: the same command without Django."""
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    metrics = run(vars(parser.parse_args(argv)))
    test = metrics["test"]
    print(f"done: test accuracy {test['accuracy']:.4f}, macro-F1 {test['macro_f1']:.4f}")


if __name__ == "__main__":
    main()
