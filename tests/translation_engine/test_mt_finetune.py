"""Fine-tuning behaviour: early stopping, resume after a crash, CLI, nothing half-written on error."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from transformers import TrainerCallback

from translation.training import cli
from translation.training.common import DataError
from translation.training.finetune import TranslationTrainingConfig, finetune_translation


def tiny_config(data: Path, out: Path, **overrides) -> TranslationTrainingConfig:
    values = dict(
        data=data,
        out=out,
        source="en",
        target="es",
        init="tiny",
        batch_size=16,
        vocab_size=200,
        tiny_d_model=32,
        tiny_layers=1,
        max_eval_samples=8,
        ratios=(0.9, 0.05, 0.05),
        max_length=32,
        threads=1,
        log=lambda line: None,
    )
    values.update(overrides)
    return TranslationTrainingConfig(**values)


@pytest.fixture(scope="module")
def small_tsv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from translation.training.synthetic import generate_pairs, write_tsv

    return write_tsv(generate_pairs(160, seed=11), tmp_path_factory.mktemp("small") / "en-es.tsv")


def test_early_stopping_on_a_plateau(small_tsv: Path, tmp_path: Path) -> None:
    # lr 0: the validation score cannot improve, so patience 1 stops at the second evaluation.
    metrics = finetune_translation(
        tiny_config(small_tsv, tmp_path / "out", lr=0.0, max_steps=20, eval_steps=2, patience=1, warmup=0)
    )
    training = metrics["training"]
    assert training["stopped_early"] is True
    assert training["steps"] == 4 and training["planned_steps"] == 20
    assert training["best_checkpoint_step"] == 2
    assert len(metrics["validation_history"]) == 2


class CrashAt(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt("simulated kill")


def test_resume_continues_from_the_last_saved_step(small_tsv: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = tiny_config(small_tsv, out, max_steps=8, eval_steps=2, patience=100)
    with pytest.raises(KeyboardInterrupt):
        finetune_translation(config, extra_callbacks=[CrashAt(5)])
    assert not out.exists()  # nothing half-written
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.work"]
    assert (tmp_path / ".out.work" / "checkpoint-4").is_dir()

    metrics = finetune_translation(tiny_config(small_tsv, out, max_steps=8, eval_steps=2, patience=100))
    assert metrics["training"]["resumed_from_step"] == 4
    assert metrics["training"]["steps"] == 8
    assert (out / "model.safetensors").is_file()
    assert not (tmp_path / ".out.work").exists()


def test_cli_arguments_and_data_errors_write_nothing(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    with pytest.raises(SystemExit):  # --base and --init are exclusive
        parser.parse_args(
            ["--data", "x", "--base", "b", "--init", "tiny", "--source", "en", "--target", "es", "--out", "o"]
        )
    bad = tmp_path / "bad.tsv"
    bad.write_text("source\ttarget\nhello\thola\nbye\t\n", encoding="utf-8")
    out = tmp_path / "model"
    options = vars(
        parser.parse_args(
            [
                "--data",
                str(bad),
                "--init",
                "tiny",
                "--source",
                "en",
                "--target",
                "es",
                "--out",
                str(out),
                "--max-steps",
                "2",
            ]
        )
    )
    with pytest.raises(DataError, match=r"bad.tsv:3: empty 'target'"):
        cli.run(options)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tsv"]


def test_config_validation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        TranslationTrainingConfig(data=tmp_path, out=tmp_path, source="en", target="es")
    with pytest.raises(ValueError, match="differ"):
        TranslationTrainingConfig(data=tmp_path, out=tmp_path, source="en", target="en", init="tiny")
