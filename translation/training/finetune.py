"""Fine-tune a seq2seq translation model (teacher forcing, Seq2SeqTrainer) and evaluate it with sacreBLEU.

The output directory is a standard Hugging Face checkpoint (safetensors + tokenizer) plus metrics.json, a
curves PNG and a README model card: zipped, it is what the checkpoint upload accepts.
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from translation.training.common import (
    DataError,
    Record,
    atomic_output_dir,
    mixed_precision_flags,
    plot_curves,
    read_records,
    split_records,
    write_metrics,
    write_model_card,
)

FREEZE_CHOICES = ("none", "embeddings", "encoder")


@dataclass
class TranslationTrainingConfig:
    data: Path
    out: Path
    source: str
    target: str
    base: Path | None = None  # a local HF checkpoint directory ...
    init: str | None = None  # ... or "tiny": a small Marian model built from scratch
    epochs: float = 3.0
    max_steps: int = -1  # > 0 overrides epochs
    seed: int = 13
    batch_size: int = 32
    grad_accum: int = 1
    lr: float | None = None  # default: 1e-3 for --init tiny, 5e-5 for a pretrained base
    weight_decay: float = 0.01
    warmup: float = 0.1  # ratio of total steps when < 1, else steps
    max_grad_norm: float = 1.0
    dropout: float | None = None  # None keeps the base model's
    freeze: str = "none"  # none | embeddings | encoder
    freeze_layers: int = 0  # freeze the lowest N encoder and decoder layers
    precision: str = "auto"  # auto | fp32 | fp16 | bf16 (CUDA only)
    eval_steps: int | None = None  # None: evaluate (and checkpoint) once per epoch
    metric: str = "chrf"  # chrf | bleu: early stopping and best checkpoint
    patience: int = 3
    early_stopping_threshold: float = 0.0
    max_length: int = 128
    max_eval_samples: int = 300  # validation generation is slow; cap it
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    vocab_size: int = 1000  # --init tiny tokenizer
    tiny_d_model: int = 128
    tiny_layers: int = 2
    work_dir: Path | None = None  # trainer checkpoints for resume; default: .<out>.work beside out
    resume: bool = True
    overwrite: bool = False
    keep_work_dir: bool = False
    device: str | None = None
    threads: int | None = None  # torch intra-op threads on CPU (1 is fastest on a busy small machine)
    log: Callable[[str], None] = field(default=print, repr=False)

    def __post_init__(self) -> None:
        self.data = Path(self.data)
        self.out = Path(self.out)
        self.base = Path(self.base) if self.base else None
        if (self.base is None) == (self.init is None):
            raise ValueError("give exactly one of base (a checkpoint directory) or init='tiny'")
        if self.init not in (None, "tiny"):
            raise ValueError(f"unknown init {self.init!r} (only 'tiny')")
        if self.source == self.target:
            raise ValueError("source and target languages must differ")
        if self.freeze not in FREEZE_CHOICES:
            raise ValueError(f"freeze must be one of {FREEZE_CHOICES}")
        if self.metric not in ("chrf", "bleu"):
            raise ValueError("metric must be chrf or bleu")
        if self.lr is None:
            self.lr = 1e-3 if self.init == "tiny" else 5e-5
        if self.work_dir is None:
            self.work_dir = self.out.parent / f".{self.out.name}.work"
        self.work_dir = Path(self.work_dir)

    def hyperparameters(self) -> dict[str, Any]:
        skip = {"data", "out", "work_dir", "log", "overwrite", "keep_work_dir", "resume"}
        return {
            key: (str(value) if isinstance(value, Path) else value)
            for key, value in asdict(self).items()
            if key not in skip
        }


def _same_text(record: Record) -> str | None:
    if record["source"].casefold() == record["target"].casefold():
        return "source and target are identical (not a translation pair)"
    return None


def read_parallel(path: str | Path) -> list[Record]:
    """Parallel data (TSV header ``source<TAB>target`` or JSONL), rejecting pairs that are not translations."""
    return read_records(path, required=("source", "target"), check=_same_text)


def score(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Corpus BLEU and chrF (sacreBLEU defaults)."""
    import sacrebleu

    refs = [list(references)]
    return {
        # force: our text is detokenized; sacreBLEU only guesses otherwise from trailing periods.
        "bleu": round(sacrebleu.corpus_bleu(list(hypotheses), refs, force=True).score, 2),
        "chrf": round(sacrebleu.corpus_chrf(list(hypotheses), refs).score, 2),
    }


def _load_model_and_tokenizer(config: TranslationTrainingConfig, train: list[Record]):  # noqa: ANN202
    import warnings

    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    if config.init == "tiny":
        from translation.training.tiny import TinyConfig, build_tiny_model, build_tiny_tokenizer

        tokenizer_dir = config.work_dir / "tokenizer"
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*sacremoses.*")
            if tokenizer_dir.is_dir():  # resuming: the tokenizer must be the one the checkpoints were trained with
                tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
            else:
                texts = [record["source"] for record in train] + [record["target"] for record in train]
                tokenizer = build_tiny_tokenizer(texts, config.vocab_size)
                tokenizer.save_pretrained(tokenizer_dir)
        tiny = TinyConfig(
            d_model=config.tiny_d_model,
            layers=config.tiny_layers,
            ffn_dim=2 * config.tiny_d_model,
            dropout=0.1 if config.dropout is None else config.dropout,
        )
        return build_tiny_model(tokenizer, tiny, seed=config.seed), tokenizer, "none (--init tiny: random init)"
    overrides = {} if config.dropout is None else {"dropout": config.dropout}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*sacremoses.*")
        tokenizer = AutoTokenizer.from_pretrained(config.base, local_files_only=True, trust_remote_code=False)
    model = AutoModelForSeq2SeqLM.from_pretrained(
        config.base, local_files_only=True, trust_remote_code=False, use_safetensors=True, **overrides
    )
    return model, tokenizer, str(config.base)


def _set_languages(model: Any, tokenizer: Any, source: str, target: str) -> None:
    """Multilingual models (M2M100, NLLB): language tags on both sides and the forced target BOS."""
    from translation.engine.hf import NLLB_CODES, _tokenizer_kind

    kind = _tokenizer_kind(model, tokenizer)
    if kind == "m2m100":
        tokenizer.src_lang, tokenizer.tgt_lang = source, target
        model.generation_config.forced_bos_token_id = tokenizer.get_lang_id(target)
    elif kind == "nllb":
        tokenizer.src_lang, tokenizer.tgt_lang = NLLB_CODES.get(source, source), NLLB_CODES.get(target, target)
        model.generation_config.forced_bos_token_id = tokenizer.convert_tokens_to_ids(tokenizer.tgt_lang)


def _pin_decoder_start_embedding(model: Any) -> None:
    """Keep Marian's decoder-start (``<pad>``) embedding at zero throughout training.

    Marian and CTranslate2 start decoding from a zero vector; Transformers looks up the pad row instead, which
    ``padding_idx`` shields from the input side but NOT from the tied output projection. Left alone, training
    moves that row and the HF and CTranslate2 versions of the same checkpoint translate differently.
    """
    import torch

    if model.config.model_type != "marian":
        return
    pad = model.config.pad_token_id
    weights = {id(w): w for w in (model.get_input_embeddings().weight, model.get_output_embeddings().weight)}
    weights.setdefault(id(model.get_decoder().embed_tokens.weight), model.get_decoder().embed_tokens.weight)
    for weight in weights.values():
        with torch.no_grad():
            weight[pad].zero_()
        weight.register_hook(lambda grad: grad.index_fill(0, torch.tensor([pad], device=grad.device), 0.0))


def _freeze(model: Any, config: TranslationTrainingConfig) -> int:
    """Apply the freezing options; returns the number of trainable parameters left."""
    if config.freeze == "embeddings":
        # Shared and tied in Marian: this also fixes the output projection.
        model.get_input_embeddings().weight.requires_grad_(False)
    elif config.freeze == "encoder":
        for parameter in model.get_encoder().parameters():
            parameter.requires_grad_(False)
    if config.freeze_layers:
        for stack in (model.get_encoder(), model.get_decoder()):
            for layer in stack.layers[: config.freeze_layers]:
                for parameter in layer.parameters():
                    parameter.requires_grad_(False)
    return sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)


def _features(tokenizer: Any, records: Sequence[Record], max_length: int) -> list[dict[str, list[int]]]:
    encoded = tokenizer(
        text=[record["source"] for record in records],
        text_target=[record["target"] for record in records],
        max_length=max_length,
        truncation=True,
    )
    return [
        {"input_ids": ids, "attention_mask": mask, "labels": labels}
        for ids, mask, labels in zip(encoded["input_ids"], encoded["attention_mask"], encoded["labels"], strict=True)
    ]


def _evaluate_test(model: Any, tokenizer: Any, test: Sequence[Record], config: TranslationTrainingConfig):  # noqa: ANN202
    from translation.engine.hf import translate_with_model

    start = time.perf_counter()
    hypotheses = translate_with_model(
        model, tokenizer, [record["source"] for record in test], source=config.source, target=config.target
    )
    figures = score(hypotheses, [record["target"] for record in test])
    figures["seconds"] = round(time.perf_counter() - start, 2)
    examples = [
        {"source": record["source"], "reference": record["target"], "output": output}
        for record, output in list(zip(test, hypotheses, strict=True))[:5]
    ]
    return figures, examples


def finetune_translation(config: TranslationTrainingConfig, *, extra_callbacks: Sequence[Any] = ()) -> dict[str, Any]:
    """Train, evaluate base and fine-tuned model on the test split, write the output dir; returns metrics."""
    import torch

    previous_threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        return _finetune(config, extra_callbacks)
    finally:
        torch.set_num_threads(previous_threads)


def _finetune(config: TranslationTrainingConfig, extra_callbacks: Sequence[Any]) -> dict[str, Any]:
    import torch
    from transformers import (
        DataCollatorForSeq2Seq,
        EarlyStoppingCallback,
        Seq2SeqTrainer,
        Seq2SeqTrainingArguments,
        set_seed,
    )
    from transformers.trainer_utils import get_last_checkpoint

    from translation.training.common import EpochLogCallback

    log = config.log
    out = config.out.resolve()
    if out.is_dir() and any(out.iterdir()) and not config.overwrite:
        raise FileExistsError(f"{out} exists and is not empty (use overwrite)")
    records = read_parallel(config.data)
    splits = split_records(records, seed=config.seed, ratios=config.ratios)
    if not splits.validation or not splits.test:
        raise DataError("the data needs validation and test examples", path=config.data)
    how = "from the split column" if splits.from_file else f"seeded split, seed {config.seed}"
    log(f"data: {splits.sizes()} ({how})")

    set_seed(config.seed)
    config.work_dir.mkdir(parents=True, exist_ok=True)
    model, tokenizer, base_name = _load_model_and_tokenizer(config, splits.train)
    _set_languages(model, tokenizer, config.source, config.target)
    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)

    base_file = config.work_dir / "base_metrics.json"
    if base_file.is_file():  # resuming: the base model was scored before the interruption
        base_metrics, base_examples = json.loads(base_file.read_text(encoding="utf-8")).values()
    else:
        base_metrics, base_examples = _evaluate_test(model, tokenizer, splits.test, config)
        base_file.write_text(json.dumps({"metrics": base_metrics, "examples": base_examples}), encoding="utf-8")
    log(f"base model on test: BLEU {base_metrics['bleu']}, chrF {base_metrics['chrf']}")

    _pin_decoder_start_embedding(model)
    trainable = _freeze(model, config)
    # Seq2SeqTrainer writes its evaluation lengths into generation_config; the saved model should not carry them.
    generation_config = copy.deepcopy(model.generation_config)
    train_features = _features(tokenizer, splits.train, config.max_length)
    validation = splits.validation[: config.max_eval_samples]
    eval_features = _features(tokenizer, validation, config.max_length)

    def compute_metrics(prediction: Any) -> dict[str, float]:
        import numpy as np

        predictions = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        predictions = np.where(predictions < 0, tokenizer.pad_token_id, predictions)
        hypotheses = [text.strip() for text in tokenizer.batch_decode(predictions, skip_special_tokens=True)]
        return score(hypotheses, [record["target"] for record in validation])

    strategy = "steps" if config.eval_steps else "epoch"
    args = Seq2SeqTrainingArguments(
        output_dir=str(config.work_dir),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=max(config.batch_size, 64),
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.lr,
        weight_decay=config.weight_decay,  # AdamW (the default optimiser) applies it decoupled
        warmup_steps=config.warmup,
        lr_scheduler_type="linear",
        max_grad_norm=config.max_grad_norm,
        eval_strategy=strategy,
        save_strategy=strategy,
        eval_steps=config.eval_steps,
        save_steps=config.eval_steps or 500,
        logging_steps=max(1, min(50, (config.eval_steps or 50) // 2)),
        save_total_limit=2,  # the best and the latest survive: enough to resume and to keep the best
        load_best_model_at_end=True,
        metric_for_best_model=config.metric,
        greater_is_better=True,
        predict_with_generate=True,
        generation_max_length=config.max_length,
        generation_num_beams=1,
        seed=config.seed,
        data_seed=config.seed,
        report_to="none",
        dataloader_num_workers=0,
        use_cpu=device == "cpu",
        **mixed_precision_flags(config.precision if device != "cpu" else "fp32"),
    )
    trainer = Seq2SeqTrainer(
        model=model,
        args=args,
        train_dataset=train_features,
        eval_dataset=eval_features,
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100),
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        callbacks=[
            EarlyStoppingCallback(config.patience, config.early_stopping_threshold),
            EpochLogCallback(log),
            *extra_callbacks,
        ],
    )
    last = get_last_checkpoint(str(config.work_dir)) if config.resume else None
    resumed_from = int(Path(last).name.split("-")[-1]) if last else None
    if last:
        log(f"resuming from {last}")
    started = time.perf_counter()
    train_output = trainer.train(resume_from_checkpoint=last)
    train_seconds = time.perf_counter() - started
    state = trainer.state
    planned = state.max_steps
    model = trainer.model  # the best checkpoint (load_best_model_at_end)
    model.generation_config = generation_config

    test_metrics, test_examples = _evaluate_test(model, tokenizer, splits.test, config)
    log(f"fine-tuned model on test: BLEU {test_metrics['bleu']}, chrF {test_metrics['chrf']}")
    metrics: dict[str, Any] = {
        "kind": "translation",
        "languages": [f"{config.source}-{config.target}"],
        "base_model": base_name,
        "data": {"file": str(config.data), "sizes": splits.sizes(), "split_from_file": splits.from_file},
        "test": {"base": base_metrics, "finetuned": test_metrics},
        "gain": {key: round(test_metrics[key] - base_metrics[key], 2) for key in ("bleu", "chrf")},
        "training": {
            "steps": state.global_step,
            "planned_steps": planned,
            "stopped_early": state.global_step < planned,
            "resumed_from_step": resumed_from,
            "epochs": round(state.epoch or 0.0, 3),
            "train_loss": round(train_output.training_loss, 4),
            "first_loss": next((entry["loss"] for entry in state.log_history if "loss" in entry), None),
            "last_loss": next((entry["loss"] for entry in reversed(state.log_history) if "loss" in entry), None),
            "best_validation": state.best_metric,
            "best_checkpoint_step": int(Path(state.best_model_checkpoint).name.split("-")[-1])
            if state.best_model_checkpoint
            else None,
            "seconds": round(train_seconds, 1),
            "trainable_parameters": trainable,
            "device": device,
        },
        "validation_history": [entry for entry in state.log_history if f"eval_{config.metric}" in entry],
        "examples": {"base": base_examples, "finetuned": test_examples},
        "hyperparameters": config.hyperparameters(),
    }
    with atomic_output_dir(out, overwrite=config.overwrite) as temp:
        model.save_pretrained(temp)
        tokenizer.save_pretrained(temp)
        write_metrics(temp, metrics)
        plot_curves(state.log_history, temp / "curves.png")
        write_model_card(
            temp,
            title=f"Bridge translation model {config.source}->{config.target}",
            summary=f"Seq2seq translation checkpoint fine-tuned by Bridge's pipeline from {base_name}.",
            base_model=base_name,
            data={
                "file": config.data.name,
                **splits.sizes(),
                "split": "file column" if splits.from_file else f"seed {config.seed}",
            },
            hyperparameters=config.hyperparameters(),
            metrics={
                "test BLEU (base)": base_metrics["bleu"],
                "test chrF (base)": base_metrics["chrf"],
                "test BLEU (fine-tuned)": test_metrics["bleu"],
                "test chrF (fine-tuned)": test_metrics["chrf"],
                "steps": state.global_step,
                "stopped early": state.global_step < planned,
            },
            languages=[config.source, config.target],
            pipeline_tag="translation",
            extra_sections={"Examples (test split)": [f"{e['source']} -> {e['output']}" for e in test_examples]},
        )
    if not config.keep_work_dir:
        shutil.rmtree(config.work_dir, ignore_errors=True)
    metrics["out"] = str(out)
    return metrics
