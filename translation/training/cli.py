"""Command-line interface of the translation fine-tuning pipeline.

Wrapped by ``python manage.py finetune translation ...``; also runs alone::

    python -m translation.training.cli --data data/translation/chat-en-es.tsv --init tiny \
        --source en --target es --out /tmp/m
"""

from __future__ import annotations

import argparse
from typing import Any

from translation.training.finetune import FREEZE_CHOICES, TranslationTrainingConfig, finetune_translation


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the translation fine-tuning options on ``parser``."""
    parser.add_argument("--data", required=True, help="TSV (header source<TAB>target[<TAB>split]) or JSONL")
    start = parser.add_mutually_exclusive_group(required=True)
    start.add_argument("--base", help="local Hugging Face checkpoint directory to fine-tune")
    start.add_argument("--init", choices=["tiny"], help="build a small Marian model and tokenizer from the data")
    parser.add_argument("--source", required=True, help="source language (ISO 639-1)")
    parser.add_argument("--target", required=True, help="target language (ISO 639-1)")
    parser.add_argument("--out", required=True, help="output checkpoint directory (written atomically)")
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--max-steps", type=int, default=-1, help="stop after N optimiser steps (overrides epochs)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--grad-accum", type=int, default=1, help="gradient accumulation steps")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (default 1e-3 tiny, 5e-5 base)")
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--warmup", type=float, default=0.1, help="warmup steps, or ratio of all steps if < 1")
    parser.add_argument("--max-grad-norm", type=float, default=1.0)
    parser.add_argument("--dropout", type=float, default=None)
    parser.add_argument("--freeze", choices=FREEZE_CHOICES, default="none")
    parser.add_argument("--freeze-layers", type=int, default=0, help="freeze the lowest N encoder/decoder layers")
    parser.add_argument("--precision", choices=["auto", "fp32", "fp16", "bf16"], default="auto")
    parser.add_argument("--eval-steps", type=int, default=None, help="validate every N steps (default: per epoch)")
    parser.add_argument("--metric", choices=["chrf", "bleu"], default="chrf")
    parser.add_argument("--patience", type=int, default=3, help="early stopping patience (evaluations)")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--vocab-size", type=int, default=1000, help="--init tiny tokenizer size")
    parser.add_argument("--work-dir", default=None, help="trainer checkpoints (resume) (default .<out>.work)")
    parser.add_argument("--no-resume", action="store_true", help="ignore checkpoints of an interrupted run")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when available)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")


def run(options: dict[str, Any]) -> dict[str, Any]:
    """Run a fine-tuning from parsed options (argparse names, dashes as underscores); returns metrics."""
    known = set(TranslationTrainingConfig.__dataclass_fields__)
    values = {key: value for key, value in options.items() if key in known and value is not None}
    values["resume"] = not options.get("no_resume", False)
    if "log" in options:
        values["log"] = options["log"]
    config = TranslationTrainingConfig(**values)
    return finetune_translation(config)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fine-tune a translation model")
    add_arguments(parser)
    metrics = run(vars(parser.parse_args(argv)))
    test = metrics["test"]
    print(
        f"wrote {metrics['out']}: test BLEU {test['base']['bleu']} -> {test['finetuned']['bleu']}, "
        f"chrF {test['base']['chrf']} -> {test['finetuned']['chrf']}"
    )


if __name__ == "__main__":
    main()
