"""Fine-tune a sequence classifier on labeled chat messages into an emotion + hostility checkpoint.

transformers' Trainer does the loop (AdamW with weight decay, warmup then linear decay, gradient clipping,
accumulation, mixed precision, seeds, checkpoints, early stopping); this module adds what is specific to the
task: the label scheme, class weights, layer freezing, the metrics, and a complete output directory
(checkpoint, tokenizer, metrics.json, curves, confusion matrix, model card) that appears all at once or not at
all.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from sentiment.engine.labels import EMOTIONS, POLARITY_OF, label_name
from translation.training.common import atomic_output_dir

from .data import Example, SentimentSplits, load_splits
from .parallel import MemberJob, train_in_processes

FREEZE_CHOICES = ("none", "embeddings", "all-but-head")
SELECTION_METRICS = ("macro_f1", "hostile_f1", "combined")
_SCORES = ("accuracy", "macro_f1", "hostile_precision", "hostile_recall", "hostile_f1", "combined")


@dataclass
class FinetuneConfig:
    """Hyper-parameters of one fine-tuning run (every field is a CLI option of ``finetune sentiment``)."""

    epochs: float = 6.0
    learning_rate: float = 8e-5
    batch_size: int = 32
    gradient_accumulation: int = 1
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    dropout: float | None = 0.1  # None keeps the base checkpoint's dropout
    max_length: int = 64
    freeze: str = "embeddings"  # none | embeddings | all-but-head
    freeze_layers: int = 0  # also freeze this many lower encoder layers
    class_weights: bool = True
    early_stopping_patience: int = 2  # epochs without gain before stopping; 0: train every epoch
    selection_metric: str = "combined"  # what picks the best epoch and drives early stopping
    # Average the trainable weights of this many epochs ending at the best one (1: the best epoch as it is).
    # Kept only when the average does at least as well on validation as the best epoch alone, unless
    # ``average_gate`` is off.
    average_epochs: int = 1
    # False: the average always replaces the best epoch. The validation slice shares settings and phrasings with
    # the training rows, so it barely separates the epoch mean from the best epoch while held-out rows do
    # (docs/models.md): the gate can reject a mean that generalises better.
    average_gate: bool = True
    # Seed of the data order and dropout; None: ``seed``. The head's initial weights and the validation slice
    # always follow ``seed``, so runs that differ only here start from the same point and can be averaged.
    data_order_seed: int | None = None
    # Two or more: train one run per data-order seed and average their weights (a "model soup"; see
    # :func:`average_checkpoints`). Empty: one run.
    soup_order_seeds: tuple[int, ...] = ()
    precision: str = "auto"  # auto | fp32 | fp16 | bf16 (mixed precision applies on CUDA only)
    seed: int = 13
    validation_fraction: float = 0.1
    group_by_length: bool = True  # batches of similar length: less padding, faster on CPU
    eval_batch_size: int = 64
    hostile_threshold: float = 0.5
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def order_seed(self) -> int:
        return self.seed if self.data_order_seed is None else self.data_order_seed

    def validate(self) -> None:
        if self.freeze not in FREEZE_CHOICES:
            raise ValueError(f"freeze must be one of {FREEZE_CHOICES}, got {self.freeze!r}")
        if self.selection_metric not in SELECTION_METRICS:
            raise ValueError(f"selection_metric must be one of {SELECTION_METRICS}")
        if self.epochs <= 0 or self.batch_size < 1 or self.gradient_accumulation < 1 or self.max_length < 8:
            raise ValueError("epochs, batch_size, gradient_accumulation must be positive and max_length >= 8")
        if self.early_stopping_patience < 0:
            raise ValueError("early_stopping_patience must be 0 (train every epoch) or more")
        if self.average_epochs < 1:
            raise ValueError("average_epochs must be at least 1 (1: no averaging)")
        if len(set(self.soup_order_seeds)) != len(self.soup_order_seeds):
            raise ValueError(f"soup_order_seeds must be distinct, got {self.soup_order_seeds}")


class _Encoded:
    """A tokenised split as the Trainer wants it: a sequence of feature dicts (padding happens per batch)."""

    def __init__(self, examples: Sequence[Example], tokenizer: Any, label2id: dict[str, int], max_length: int):
        encoded = tokenizer([e.text for e in examples], truncation=True, max_length=max_length)
        self.rows = [
            {"input_ids": ids, "attention_mask": mask, "labels": label2id[example.label]}
            for ids, mask, example in zip(encoded["input_ids"], encoded["attention_mask"], examples, strict=True)
        ]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.rows[index]


def label_set(examples: Sequence[Example]) -> list[str]:
    """All seven emotions, plus a hostile variant for every emotion the data marks hostile."""
    hostile = {e.emotion for e in examples if e.hostile}
    return [label_name(e, False) for e in EMOTIONS] + [label_name(e, True) for e in EMOTIONS if e in hostile]


def class_weight_vector(examples: Sequence[Example], labels: Sequence[str]) -> np.ndarray:
    """sklearn's 'balanced' weights per label; labels absent from the data get weight 0 (never a target)."""
    from sklearn.utils.class_weight import compute_class_weight

    present = sorted({e.label for e in examples})
    weights = compute_class_weight("balanced", classes=np.array(present), y=np.array([e.label for e in examples]))
    by_label = dict(zip(present, weights, strict=True))
    return np.array([by_label.get(label, 0.0) for label in labels], dtype=np.float32)


def _apply_freezing(model: Any, freeze: str, freeze_layers: int) -> None:
    base = model.base_model
    if freeze == "all-but-head":
        for name, parameter in base.named_parameters():
            # The pooler belongs to the head in spirit: it only exists to feed the classifier.
            parameter.requires_grad = name.startswith("pooler.")
        return
    if freeze == "embeddings" or freeze_layers:
        embeddings = getattr(base, "embeddings", None) or model.get_input_embeddings()
        if freeze == "embeddings":
            embeddings.requires_grad_(False)
    if freeze_layers:
        layers = getattr(getattr(base, "encoder", None), "layer", None)
        if layers is None:
            raise ValueError(f"freeze_layers: cannot find encoder layers in {type(base).__name__}")
        for layer in layers[:freeze_layers]:
            layer.requires_grad_(False)


def _scores(
    emotion_probs: np.ndarray,
    hostile_scores: np.ndarray,
    gold_emotions: Sequence[str],
    gold_hostile: Sequence[bool],
    threshold: float,
) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    predicted = [EMOTIONS[i] for i in emotion_probs.argmax(axis=1)]
    flagged = hostile_scores >= threshold
    precision, recall, f1, _ = precision_recall_fscore_support(
        np.asarray(gold_hostile, dtype=bool), flagged, average="binary", zero_division=0
    )
    # Macro over the emotions that occur (gold or predicted): a small per-language slice may lack one, and an
    # absent class would count as F1 = 0.
    present = [e for e in EMOTIONS if e in set(gold_emotions) | set(predicted)]
    macro_f1 = f1_score(gold_emotions, predicted, labels=present, average="macro", zero_division=0)
    return {
        "accuracy": float(accuracy_score(gold_emotions, predicted)),
        "macro_f1": float(macro_f1),
        "hostile_precision": float(precision),
        "hostile_recall": float(recall),
        "hostile_f1": float(f1),
        # Emotion and hostility weigh the same when choosing the best epoch: the product needs both.
        "combined": float((macro_f1 + f1) / 2),
    }


def _metrics_function(labels: Sequence[str], threshold: float) -> Callable:
    import torch

    from sentiment.engine.engine import LabelScheme
    from sentiment.engine.labels import parse_label

    scheme = LabelScheme(list(labels))
    gold_of = [parse_label(label) for label in labels]

    def compute_metrics(prediction: Any) -> dict[str, float]:
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        probabilities = torch.softmax(torch.as_tensor(logits, dtype=torch.float32), dim=-1)
        emotions, hostile = scheme.collapse(probabilities)
        # Gold from label_ids, not from our example list: the Trainer may reorder evaluation batches.
        gold = [gold_of[int(i)] for i in prediction.label_ids]
        return _scores(emotions.numpy(), hostile.numpy(), [g[0] for g in gold], [g[1] for g in gold], threshold)

    return compute_metrics


def _trainer_class() -> type:
    import torch
    from transformers import Trainer

    class WeightedLossTrainer(Trainer):
        """Trainer whose cross-entropy weighs each label (rare hostile variants would drown otherwise)."""

        # Our loss is a per-micro-batch mean: let the Trainer divide it by the accumulation steps.
        loss_is_scaled_for_ga = False

        def __init__(self, *args: Any, class_weights: torch.Tensor | None = None, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.class_weights = class_weights

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            logits = outputs.logits.float()
            weight = self.class_weights.to(logits.device) if self.class_weights is not None else None
            loss = torch.nn.functional.cross_entropy(logits, labels, weight=weight)
            return (loss, outputs) if return_outputs else loss

    return WeightedLossTrainer


def _weight_snapshots_callback(directory: Path, keep: int) -> Any:
    """A callback that writes the trainable weights at the end of every epoch to ``directory`` (safetensors),
    keeping the newest ``keep``: on disk rather than in memory, so that ``--resume`` still finds them."""
    from safetensors.torch import save_file
    from transformers import TrainerCallback

    class WeightSnapshots(TrainerCallback):
        def on_epoch_end(self, args, state, control, model=None, **kwargs):  # noqa: ANN001 (Trainer API)
            directory.mkdir(parents=True, exist_ok=True)
            weights = {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}
            save_file(weights, directory / f"step-{state.global_step}.safetensors")
            for stale in _weight_snapshots(directory)[:-keep]:
                stale.unlink()

    return WeightSnapshots()


def _weight_snapshots(directory: Path) -> list[Path]:
    return sorted(directory.glob("step-*.safetensors"), key=_snapshot_step)


def _snapshot_step(path: Path) -> int:
    return int(path.stem.removeprefix("step-"))


def _average_best_epochs(trainer: Any, directory: Path, validation_set: Any, config: FinetuneConfig) -> dict:
    """Replace the best epoch's weights by the mean of the ``config.average_epochs`` epochs ending at it when
    that mean does at least as well on validation (always when ``config.average_gate`` is off); returns what was
    tried and kept (for metrics.json).

    Averaging neighbouring epochs of one run smooths out which epoch happened to win on ~600 validation rows
    (docs/models.md: the held-out figure moved by a point between equally good epochs) at no inference cost.
    """
    from safetensors.torch import load_file

    best_step = _step_of(trainer.state.best_model_checkpoint)
    window = [p for p in _weight_snapshots(directory) if _snapshot_step(p) <= (best_step or 0)]
    window = window[-config.average_epochs :]
    if len(window) < 2:
        return {"epochs": len(window), "kept": False}
    model = trainer.model
    best = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    states = [load_file(path) for path in window]
    averaged = {name: sum(state[name] for state in states) / len(states) for name in best}
    model.load_state_dict(averaged, strict=False)
    # predict() rather than evaluate(): the same figures without a new entry in the training history.
    figures = trainer.predict(validation_set, metric_key_prefix="eval").metrics
    key = f"eval_{config.selection_metric}"
    kept = figures[key] >= trainer.state.best_metric or not config.average_gate
    if not kept:
        model.load_state_dict(best, strict=False)
    return {
        "epochs": len(window),
        "steps": [_snapshot_step(p) for p in window],
        "validation": {k.removeprefix("eval_"): v for k, v in figures.items() if k.removeprefix("eval_") in _SCORES},
        "best_epoch_validation": trainer.state.best_metric,
        "gated": config.average_gate,
        "kept": bool(kept),
    }


def make_readable(directory: Path) -> None:
    """Give a finished output dir the usual umask permissions: the temp dir it was built in is private (0700),
    and the workers that load the checkpoint may run as another user."""
    umask = os.umask(0)
    os.umask(umask)
    directory.chmod(0o777 & ~umask)
    for path in directory.iterdir():
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def work_dir_for(out_dir: Path) -> Path:
    """Where interrupted runs keep their Trainer checkpoints (beside the output, so resume can find them)."""
    return out_dir.parent / f".{out_dir.name}.work"


def finetune_sentiment(
    data: str | os.PathLike[str],
    base: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    config: FinetuneConfig | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
    callbacks: Sequence[Any] = (),
    member_processes: int = 1,
) -> dict[str, Any]:
    """Fine-tune ``base`` (a local HF checkpoint dir) on ``data`` (file or directory) into ``out``.

    ``member_processes``: how many members of a soup (``config.soup_order_seeds``) train at once, each in its
    own process (:mod:`.parallel`); 1 trains them one after the other in this process.
    ``callbacks`` are extra transformers ``TrainerCallback`` objects (progress reporting, tests). Returns the
    metrics dict also written to ``out/metrics.json``. On any error nothing is left at ``out``;
    Trainer checkpoints stay in :func:`work_dir_for` so that ``resume=True`` continues from the last one.
    """
    import torch
    import transformers
    from transformers import (
        AutoConfig,
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        EarlyStoppingCallback,
        TrainingArguments,
    )
    from transformers.trainer_utils import get_last_checkpoint

    from translation.training.common import EpochLogCallback, mixed_precision_flags

    config = config or FinetuneConfig()
    config.validate()
    base, out = Path(base), Path(out).resolve()
    if not (base / "config.json").is_file():
        raise FileNotFoundError(f"{base}: not a Hugging Face checkpoint directory (no config.json)")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty (pass overwrite to replace it)")
    if len(config.soup_order_seeds) > 1:
        return _finetune_soup(
            data,
            base,
            out,
            config=config,
            resume=resume,
            overwrite=overwrite,
            progress=progress,
            log=log,
            callbacks=callbacks,
            member_processes=member_processes,
        )
    splits = load_splits(data, seed=config.seed, validation_fraction=config.validation_fraction)
    labels = label_set(splits.train)
    label2id = {label: index for index, label in enumerate(labels)}
    for example in splits.validation + splits.test:
        if example.label not in label2id:  # e.g. a hostile variant that training never saw
            label2id[example.label] = len(labels)
            labels.append(example.label)
    source = "split column" if splits.from_file else f"seeded split, seed {config.seed}"
    log(f"data: {splits.sizes()} ({source}); {len(labels)} labels")

    transformers.set_seed(config.seed)  # the new classifier head's initial weights depend on it
    tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True, trust_remote_code=False)
    overrides: dict[str, Any] = {}
    if config.dropout is not None:
        overrides = {"hidden_dropout_prob": config.dropout, "attention_probs_dropout_prob": config.dropout}
    model_config = AutoConfig.from_pretrained(
        base,
        local_files_only=True,
        trust_remote_code=False,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id=label2id,
        problem_type="single_label_classification",
        **overrides,
    )
    model = AutoModelForSequenceClassification.from_pretrained(
        base,
        config=model_config,
        local_files_only=True,
        use_safetensors=True,
        trust_remote_code=False,
        ignore_mismatched_sizes=True,  # a previous classifier head with other labels is replaced
    )
    _apply_freezing(model, config.freeze, config.freeze_layers)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    log(f"model: {type(model).__name__}, {trainable / 1e6:.1f}M of {total / 1e6:.1f}M parameters trainable")

    train_set = _Encoded(splits.train, tokenizer, label2id, config.max_length)
    validation_set = _Encoded(splits.validation, tokenizer, label2id, config.max_length)
    weights = class_weight_vector(splits.train, labels) if config.class_weights else None

    work = work_dir_for(out)
    if not resume and work.exists():
        shutil.rmtree(work)
    args = TrainingArguments(
        output_dir=str(work),
        num_train_epochs=config.epochs,
        learning_rate=config.learning_rate,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.eval_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation,
        weight_decay=config.weight_decay,
        warmup_steps=config.warmup_ratio,  # a float < 1 is a fraction of the total steps in transformers 5
        lr_scheduler_type="linear",
        max_grad_norm=config.max_grad_norm,
        optim="adamw_torch",
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=2,  # the best and the latest: enough for load_best_model_at_end and for resume
        load_best_model_at_end=True,
        metric_for_best_model=config.selection_metric,
        greater_is_better=True,
        logging_strategy="steps",
        logging_steps=10,
        seed=config.order_seed,
        data_seed=config.order_seed,
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        disable_tqdm=not progress,
        report_to="none",
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        **mixed_precision_flags(config.precision),
    )
    snapshots = work / "weights"
    # The epochs up to the best are on disk when training ends: with early stopping the best is at most
    # ``patience`` epochs back; without it, any epoch can be the best.
    keep_snapshots = (
        config.average_epochs + config.early_stopping_patience
        if config.early_stopping_patience
        else math.ceil(config.epochs)
    )
    averaging = [_weight_snapshots_callback(snapshots, keep_snapshots)] if config.average_epochs > 1 else []
    stopping = [EarlyStoppingCallback(config.early_stopping_patience)] if config.early_stopping_patience else []
    trainer = _trainer_class()(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=validation_set,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=_metrics_function(labels, config.hostile_threshold),
        callbacks=[
            *stopping,
            EpochLogCallback(log),
            *averaging,
            *callbacks,
        ],
        class_weights=torch.tensor(weights) if weights is not None else None,
    )
    checkpoint = get_last_checkpoint(str(work)) if resume and work.is_dir() else None
    if resume:
        log(f"resuming from {checkpoint}" if checkpoint else "resume: no saved state found, starting afresh")
    started = time.monotonic()
    train_output = trainer.train(resume_from_checkpoint=checkpoint)
    train_seconds = time.monotonic() - started
    average = _average_best_epochs(trainer, snapshots, validation_set, config) if config.average_epochs > 1 else None
    if average and average["epochs"] > 1:
        log(
            f"weights averaged over {average['epochs']} epochs up to the best: validation "
            f"{config.selection_metric} {average['validation'][config.selection_metric]:.4f} against "
            f"{average['best_epoch_validation']:.4f} for the best epoch alone; "
            + ("kept the average" if average["kept"] else "kept the best epoch")
        )

    with atomic_output_dir(out, overwrite=overwrite) as temp:
        trainer.save_model(str(temp))  # the best epoch's weights (load_best_model_at_end)
        tokenizer.save_pretrained(str(temp))
        for stray in ("training_args.bin",):  # a pickle: never ship one
            (temp / stray).unlink(missing_ok=True)
        metrics = _evaluate_and_report(
            temp,
            splits=splits,
            labels=labels,
            config=config,
            base=base,
            log_history=trainer.state.log_history,
            extra={
                "train_seconds": round(train_seconds, 1),
                "train_loss": train_output.training_loss,
                "train_loss_history": [(e["step"], e["loss"]) for e in trainer.state.log_history if "loss" in e],
                "global_steps": trainer.state.global_step,
                "best_step": _step_of(trainer.state.best_model_checkpoint),
                "best_validation": _best_validation(trainer.state.log_history, trainer.state.best_model_checkpoint),
                "resumed_from_step": _step_of(checkpoint),
                "weight_average": average,
                "validation_history": [
                    {k: v for k, v in e.items() if k == "step" or k.removeprefix("eval_") in _SCORES}
                    for e in trainer.state.log_history
                    if "eval_macro_f1" in e
                ],
            },
            log=log,
        )
        make_readable(temp)
    shutil.rmtree(work, ignore_errors=True)
    return metrics


def _finetune_soup(
    data: str | os.PathLike[str],
    base: Path,
    out: Path,
    *,
    config: FinetuneConfig,
    resume: bool,
    overwrite: bool,
    progress: bool,
    log: Callable[[str], None],
    callbacks: Sequence[Any],
    member_processes: int,
) -> dict[str, Any]:
    """One run per data-order seed (the members live in the work dir, so ``resume`` skips finished ones), then
    the mean of their weights, evaluated and reported like a single run. With ``member_processes`` > 1 the
    members train side by side in their own processes, sharing this process's torch threads between them."""
    work = work_dir_for(out)
    if not resume and work.exists():
        shutil.rmtree(work)
    seeds = config.soup_order_seeds
    members = [work / f"member-order-seed-{order_seed}" for order_seed in seeds]
    jobs: list[MemberJob] = []
    for number, (order_seed, member) in enumerate(zip(seeds, members, strict=True), start=1):
        if resume and (member / "metrics.json").is_file():
            log(f"soup member {number}/{len(seeds)} (data order seed {order_seed}): done before, reused")
            continue
        member_config = replace(config, soup_order_seeds=(), data_order_seed=order_seed)
        name = f"soup member {number}/{len(seeds)} (data order seed {order_seed})"
        jobs.append(MemberJob(name, Path(data), base, member, member_config, resume))
    if member_processes > 1 and len(jobs) > 1:
        if callbacks:
            raise ValueError("callbacks cannot reach member processes: train soup members one at a time to use them")
        import torch

        processes = min(member_processes, len(jobs))
        threads = max(1, torch.get_num_threads() // processes)
        train_in_processes(jobs, processes=processes, threads_per_process=threads, progress=progress, log=log)
    else:
        for job in jobs:
            log(job.name)
            job.train(progress=progress, log=log, callbacks=callbacks)
    member_metrics = [json.loads((member / "metrics.json").read_text(encoding="utf-8")) for member in members]

    splits = load_splits(data, seed=config.seed, validation_fraction=config.validation_fraction)
    from sentiment.engine import SentimentEngine

    with atomic_output_dir(out, overwrite=overwrite) as temp:
        labels = average_checkpoints(members, temp)
        engine = SentimentEngine.from_directory(temp, device="cpu", max_length=config.max_length, batch_size=64)
        validation = evaluate_engine(engine, splits.validation, hostile_threshold=config.hostile_threshold)
        first = member_metrics[0]
        history = [{"step": step, "loss": loss} for step, loss in first["train_loss_history"]]
        history += [{"step": e["step"], **{f"eval_{k}": v for k, v in e.items() if k != "step"}}
                    for e in first.get("validation_history", [])]  # fmt: skip
        metrics = _evaluate_and_report(
            temp,
            splits=splits,
            labels=labels,
            config=config,
            base=base,
            log_history=history,  # the curves are the first member's
            extra={
                "train_seconds": round(sum(m["train_seconds"] for m in member_metrics), 1),
                "soup": {
                    "validation": {k: validation[k] for k in _SCORES if k in validation},
                    "members": [
                        {
                            "data_order_seed": seed,
                            "best_step": m["best_step"],
                            "weight_average": m.get("weight_average"),
                            "validation": {k: m["best_validation"].get(k) for k in _SCORES},
                            "test": {
                                k: m["test"][k] for k in ("accuracy", "macro_f1", "hostile_precision", "hostile_recall")
                            },
                            "test_per_language_macro_f1": {
                                lang: fig["macro_f1"] for lang, fig in m["test"]["per_language"].items()
                            },
                        }
                        for seed, m in zip(seeds, member_metrics, strict=True)
                    ],
                },
            },
            log=log,
        )
        make_readable(temp)
    shutil.rmtree(work, ignore_errors=True)
    return metrics


def average_checkpoints(checkpoints: Sequence[Path], out: Path) -> list[str]:
    """Write the element-wise mean of ``checkpoints``' weights (same architecture and labels) to ``out``, with
    the first one's config and tokenizer; returns the labels.

    Fine-tuned copies of one pretrained encoder, started from the same head and differing only in data order,
    stay in one basin of the loss: their mean is one model of the same size that scores like an ensemble of
    them (Wortsman et al. 2022, "Model soups"), so inference costs what one model costs.
    """
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(
        checkpoints[0], local_files_only=True, use_safetensors=True, trust_remote_code=False, dtype=torch.float32
    )
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    states = [load_file(Path(path) / "model.safetensors") for path in checkpoints]
    for path, state in zip(checkpoints, states, strict=True):
        if set(state) != set(states[0]) or any(state[k].shape != states[0][k].shape for k in state):
            raise ValueError(f"{path}: weights do not match {checkpoints[0]} (other architecture or labels)")
        other = AutoConfig.from_pretrained(path, local_files_only=True)  # the labels only: no second model load
        if [other.id2label[i] for i in range(other.num_labels)] != labels:
            raise ValueError(f"{path}: labels differ from {checkpoints[0]}")
    averaged = {name: sum(state[name].float() for state in states) / len(states) for name in states[0]}
    _, unexpected = model.load_state_dict(averaged, strict=False)
    if unexpected:
        raise ValueError(f"weights the model does not have: {unexpected[:5]}")
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(checkpoints[0], local_files_only=True).save_pretrained(out)
    return labels


def _step_of(checkpoint: str | None) -> int | None:
    if not checkpoint:
        return None
    return int(Path(checkpoint).name.rsplit("-", 1)[-1])


def _best_validation(history: Sequence[dict], best_checkpoint: str | None) -> dict[str, float]:
    best_step = _step_of(best_checkpoint)
    evals = [entry for entry in history if "eval_macro_f1" in entry]
    chosen = next((e for e in evals if e.get("step") == best_step), evals[-1] if evals else {})
    return {k.removeprefix("eval_"): v for k, v in chosen.items() if k.startswith("eval_") and "per_second" not in k}


def evaluate_checkpoint(
    model_dir: str | os.PathLike[str],
    examples: Sequence[Example],
    *,
    hostile_threshold: float = 0.5,
    max_length: int = 64,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Score a checkpoint through :class:`SentimentEngine` (the code path production uses) on ``examples``."""
    from sentiment.engine import SentimentEngine

    engine = SentimentEngine.from_directory(model_dir, device="cpu", max_length=max_length, batch_size=batch_size)
    return evaluate_engine(engine, examples, hostile_threshold=hostile_threshold)


def evaluate_engine(engine: Any, examples: Sequence[Example], *, hostile_threshold: float = 0.5) -> dict[str, Any]:
    """Held-out figures of a loaded :class:`SentimentEngine` on ``examples`` (see :func:`evaluate_checkpoint`)."""
    from sklearn.metrics import average_precision_score, classification_report, confusion_matrix

    predictions = engine.predict_batch([e.text for e in examples])
    emotion_probs = np.array([[p.probabilities[e] for e in EMOTIONS] for p in predictions])
    hostile_scores = np.array([p.hostile_score for p in predictions])
    gold = [e.emotion for e in examples]
    gold_hostile = np.array([e.hostile for e in examples], dtype=bool)
    predicted = [p.emotion for p in predictions]
    result: dict[str, Any] = {"n": len(examples), "precision": engine.precision}
    result.update(_scores(emotion_probs, hostile_scores, gold, gold_hostile, hostile_threshold))
    result["polarity_accuracy"] = float(
        np.mean([POLARITY_OF[g] == p.polarity for g, p in zip(gold, predictions, strict=True)])
    )
    result["hostile_threshold"] = hostile_threshold
    result["hostile_support"] = int(gold_hostile.sum())
    if 0 < gold_hostile.sum() < len(gold_hostile):
        result["hostile_average_precision"] = float(average_precision_score(gold_hostile, hostile_scores))
    result["per_class"] = classification_report(
        gold, predicted, labels=list(EMOTIONS), output_dict=True, zero_division=0
    )
    result["confusion_matrix"] = {
        "labels": list(EMOTIONS),
        "matrix": confusion_matrix(gold, predicted, labels=list(EMOTIONS)).tolist(),
    }
    languages = sorted({e.language for e in examples if e.language})
    per_language = {}
    for language in languages:
        rows = [i for i, e in enumerate(examples) if e.language == language]
        figures = _scores(
            emotion_probs[rows],
            hostile_scores[rows],
            [gold[i] for i in rows],
            gold_hostile[rows],
            hostile_threshold,
        )
        figures.pop("combined")
        per_language[language] = {"n": len(rows), "hostile_support": int(gold_hostile[rows].sum()), **figures}
    result["per_language"] = per_language
    return result


def probe_misses(engine: Any, probes: Sequence[Example], *, hostile_threshold: float = 0.5) -> dict[str, Any]:
    """The probes (:func:`~.data.load_probes`) whose hostile flag ``engine`` gets wrong at ``hostile_threshold``."""
    predictions = engine.predict_batch([probe.text for probe in probes])
    misses = [
        {
            "text": probe.text,
            "language": probe.language,
            "hostile": probe.hostile,
            "hostile_score": round(prediction.hostile_score, 3),
            "emotion": prediction.emotion,
        }
        for probe, prediction in zip(probes, predictions, strict=True)
        if (prediction.hostile_score >= hostile_threshold) != probe.hostile
    ]
    return {"n": len(probes), "hostile_threshold": hostile_threshold, "wrong": len(misses), "misses": misses}


def int8_summary(figures: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of an int8 evaluation (the full tables stay those of fp32, the trained weights)."""
    keys = ("n", "precision", "accuracy", "macro_f1", "hostile_precision", "hostile_recall", "polarity_accuracy")
    return {key: figures[key] for key in keys} | {
        "per_language_macro_f1": {language: fig["macro_f1"] for language, fig in figures["per_language"].items()}
    }


def _plot_confusion(matrix: list[list[int]], labels: Sequence[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # headless
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    display = ConfusionMatrixDisplay(np.array(matrix), display_labels=list(labels))
    fig, ax = plt.subplots(figsize=(7, 6))
    display.plot(ax=ax, cmap="Blues", colorbar=False, xticks_rotation=45)
    ax.set_title("Emotion confusion matrix (test split)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _evaluate_and_report(
    out_dir: Path,
    *,
    splits: SentimentSplits,
    labels: Sequence[str],
    config: FinetuneConfig,
    base: Path,
    log_history: Sequence[dict],
    extra: dict[str, Any],
    log: Callable[[str], None],
) -> dict[str, Any]:
    from sentiment.engine import SentimentEngine
    from translation.training.common import plot_curves, write_metrics, write_model_card

    from .report import probe_lines

    engine = SentimentEngine.from_directory(out_dir, device="cpu", max_length=config.max_length, batch_size=64)
    test = evaluate_engine(engine, splits.test, hostile_threshold=config.hostile_threshold)
    test_int8 = int8_summary(
        evaluate_engine(engine.with_cpu_int8(), splits.test, hostile_threshold=config.hostile_threshold)
    )
    probes = probe_misses(engine, splits.probes, hostile_threshold=config.hostile_threshold) if splits.probes else None
    _plot_confusion(test["confusion_matrix"]["matrix"], EMOTIONS, out_dir / "confusion_matrix.png")
    plot_curves(log_history, out_dir / "training_curves.png")
    languages = sorted({e.language for e in splits.train + splits.test if e.language})
    label_counts = Counter(e.label for e in splits.train)
    metrics = {
        "task": "sentiment",
        "base_model": str(base),
        "labels": list(labels),
        "split_sizes": splits.sizes(),
        "split_source": "file" if splits.from_file else f"seeded (seed {config.seed})",
        "train_label_counts": dict(sorted(label_counts.items())),
        "hyperparameters": {k: v for k, v in asdict(config).items() if k != "extra"} | config.extra,
        **extra,
        "test": test,
        "test_int8": test_int8,
    }
    if probes is not None:
        metrics["probes"] = probes
    write_metrics(out_dir, metrics)
    log(
        f"test: accuracy={test['accuracy']:.4f} macro_f1={test['macro_f1']:.4f} "
        f"hostile P/R={test['hostile_precision']:.3f}/{test['hostile_recall']:.3f}; per language macro-F1: "
        + ", ".join(f"{lang}={fig['macro_f1']:.3f}" for lang, fig in test["per_language"].items())
        + f"; int8 on CPU (opt-in): macro_f1={test_int8['macro_f1']:.4f}"
    )
    if probes is not None:
        log(probe_lines(probes).rstrip())
    per_language_table = [
        "| language | n | accuracy | macro-F1 | hostile P | hostile R |",
        "|---|---|---|---|---|---|",
    ]
    for language, fig in test["per_language"].items():
        per_language_table.append(
            f"| {language} | {fig['n']} | {fig['accuracy']:.3f} | {fig['macro_f1']:.3f} | "
            f"{fig['hostile_precision']:.3f} | {fig['hostile_recall']:.3f} |"
        )
    write_model_card(
        out_dir,
        title="Bridge emotion and hostility classifier",
        summary=(
            "Sequence classifier over the seven emotions (anger, disgust, fear, joy, sadness, surprise, "
            "neutral) plus hostile variants; load it with `sentiment.engine.SentimentEngine.from_directory`. "
            "Emotion probability = sum over its variants, hostile score = sum over the hostile variants, "
            "polarity follows the emotion."
        ),
        base_model=str(base),
        data={
            "splits": splits.sizes(),
            "split source": metrics["split_source"],
            "languages": ", ".join(languages),
        },
        hyperparameters=metrics["hyperparameters"],
        metrics={
            k: test[k]
            for k in (
                "accuracy",
                "macro_f1",
                "polarity_accuracy",
                "hostile_precision",
                "hostile_recall",
                "hostile_f1",
            )
        },
        languages=languages,
        pipeline_tag="text-classification",
        extra_sections={
            "Per language (test split)": "\n".join(per_language_table),
            "Training": {k: extra[k] for k in ("train_seconds", "global_steps", "best_step") if k in extra},
        }
        | ({"Probes": probe_lines(probes)} if probes is not None else {}),
    )
    return metrics
