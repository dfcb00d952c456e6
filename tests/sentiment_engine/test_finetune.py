"""The fine-tuning pipeline on a tiny random BERT: outputs, early stopping, resume, freezing, the CLI."""

from __future__ import annotations

import argparse
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from sentiment.engine import SentimentEngine
from sentiment.training import FinetuneConfig, finetune_sentiment
from sentiment.training.cli import add_arguments, run
from sentiment.training.data import Example
from sentiment.training.finetune import class_weight_vector, label_set, work_dir_for
from translation.training.common import DataError

from .conftest import TINY_TRAINING, sample_rows, write_tsv


def _quiet(_: str) -> None:
    pass


def test_output_directory_is_complete(tiny_trained: tuple[Path, dict]) -> None:
    out, metrics = tiny_trained
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "metrics.json", "README.md"} <= names
    assert {"confusion_matrix.png", "training_curves.png"} <= names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pkl", ".pth"))], "no pickles in a checkpoint"
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    card = (out / "README.md").read_text()
    assert "macro_f1" in card and "Per language" in card and str(metrics["split_sizes"]["test"]) in card
    assert not work_dir_for(out).exists(), "trainer checkpoints are removed after a successful run"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~umask, "workers running as another user can read it"
    assert stat.S_IMODE((out / "model.safetensors").stat().st_mode) == 0o666 & ~umask


def test_loss_falls_and_metrics_are_real(tiny_trained: tuple[Path, dict]) -> None:
    out, metrics = tiny_trained
    losses = [loss for _, loss in metrics["train_loss_history"]]
    assert len(losses) >= 3 and losses[-1] < 0.8 * losses[0], losses
    test = metrics["test"]
    assert test["n"] == sum(row["split"] == "test" for row in sample_rows())
    assert test["accuracy"] > 0.4, "a tiny model still learns the easy sample well above chance (1/7)"
    assert set(test["per_language"]) == {row["language"] for row in sample_rows() if row["split"] == "test"}
    assert sum(fig["n"] for fig in test["per_language"].values()) == test["n"]
    matrix = np.array(test["confusion_matrix"]["matrix"])
    assert matrix.sum() == test["n"] and np.trace(matrix) == round(test["accuracy"] * test["n"])
    assert 0.0 <= test["hostile_precision"] <= 1.0 and test["hostile_support"] > 0
    assert metrics["labels"][:7] == ["anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral"]
    assert set(metrics["labels"][7:]) == {"anger+hostile", "disgust+hostile"}
    int8 = metrics["test_int8"]
    assert (test["precision"], int8["precision"]) == ("fp32", "int8")
    assert int8["n"] == test["n"] and set(int8["per_language_macro_f1"]) == set(test["per_language"])
    assert abs(int8["accuracy"] - test["accuracy"]) <= 0.2, "int8 is scored on the same rows, close to fp32"


@pytest.mark.parametrize("patience", [1, 0])
def test_early_stopping_on_a_plateau(tiny_base: Path, tmp_path: Path, patience: int) -> None:
    data = write_tsv(tmp_path / "d.tsv", sample_rows())
    # A learning rate of zero: the validation metric cannot improve, so patience 1 stops after two epochs;
    # patience 0 turns early stopping off and trains all five.
    config = FinetuneConfig(
        **{**TINY_TRAINING, "epochs": 5.0, "learning_rate": 0.0, "early_stopping_patience": patience}
    )
    metrics = finetune_sentiment(data, tiny_base, tmp_path / "out", config=config, progress=False, log=_quiet)
    epochs_run = 2 if patience else 5
    steps_per_epoch = metrics["global_steps"] / epochs_run
    assert steps_per_epoch == int(steps_per_epoch) and len(metrics["validation_history"]) == epochs_run
    assert metrics["best_step"] == steps_per_epoch  # the first epoch stays the best


def _record_trainable_weights(into: dict):
    from transformers import TrainerCallback

    class Record(TrainerCallback):
        def on_epoch_end(self, args, state, control, model=None, **kwargs):  # noqa: ANN001
            into[state.global_step] = {
                n: p.detach().cpu().numpy().copy() for n, p in model.named_parameters() if p.requires_grad
            }

    return Record()


@pytest.mark.parametrize(("learning_rate", "gate"), [(2e-3, True), (2e-3, False), (0.0, True)])
def test_weight_averaging_over_the_epochs_up_to_the_best(
    tiny_base: Path, tmp_path: Path, learning_rate: float, gate: bool
) -> None:
    data = write_tsv(tmp_path / "d.tsv", sample_rows())
    config = FinetuneConfig(
        **{**TINY_TRAINING, "epochs": 6.0, "learning_rate": learning_rate, "average_epochs": 3, "average_gate": gate}
    )
    seen: dict[int, dict] = {}
    out = tmp_path / "out"
    metrics = finetune_sentiment(
        data, tiny_base, out, config=config, progress=False, log=_quiet, callbacks=[_record_trainable_weights(seen)]
    )
    average = metrics["weight_average"]
    best = metrics["best_step"]
    saved = load_file(out / "model.safetensors")
    if learning_rate == 0.0:
        # The validation figure never improves, so the first epoch stays the best: nothing before it to average.
        assert best == min(seen) and average == {"epochs": 1, "kept": False}
        for name, value in seen[best].items():
            np.testing.assert_array_equal(saved[name], value)
    else:
        expected_steps = [step for step in sorted(seen) if step <= best][-3:]
        assert len(expected_steps) > 1, "the tiny model keeps improving past its first epoch"
        assert average["epochs"] == len(expected_steps) and average["steps"] == expected_steps
        assert average["gated"] is gate
        if gate:
            assert average["kept"] == (average["validation"]["combined"] >= average["best_epoch_validation"])
        else:
            assert average["kept"], "without the gate the mean always replaces the best epoch"
        for name in seen[best]:
            averaged = np.mean([seen[step][name] for step in expected_steps], axis=0)
            wanted = averaged if average["kept"] else seen[best][name]
            np.testing.assert_allclose(saved[name], wanted, rtol=1e-5, atol=1e-6, err_msg=name)
    assert not work_dir_for(out.resolve()).exists(), "the epoch snapshots go with the work dir"


def test_no_averaging_by_default(tiny_trained: tuple[Path, dict]) -> None:
    _, metrics = tiny_trained
    assert metrics["hyperparameters"]["average_epochs"] == 1 and metrics["weight_average"] is None


def _interrupt_in_member(number: int):
    """Stops a soup run at the first checkpoint save of its ``number``-th member."""
    from transformers import TrainerCallback

    class Interrupt(TrainerCallback):
        started = 0

        def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001
            type(self).started += 1

        def on_save(self, args, state, control, **kwargs):  # noqa: ANN001
            if type(self).started == number:
                raise _Interrupt(f"member {number} stopped at step {state.global_step}")

    return Interrupt()


def test_soup_trains_one_member_per_order_seed_and_averages_them(tiny_base: Path, tmp_path: Path) -> None:
    data = write_tsv(tmp_path / "d.tsv", sample_rows())
    out = tmp_path / "out"
    config = FinetuneConfig(**{**TINY_TRAINING, "epochs": 3.0, "soup_order_seeds": (5, 6)})
    lines: list[str] = []
    with pytest.raises(_Interrupt):
        finetune_sentiment(
            data, tiny_base, out, config=config, progress=False, log=lines.append,
            callbacks=[_interrupt_in_member(2)],
        )  # fmt: skip
    assert not out.exists()
    members = work_dir_for(out.resolve())
    first = members / "member-order-seed-5"
    assert (first / "metrics.json").is_file(), "the finished member waits in the work dir"
    kept = {name: value.copy() for name, value in load_file(first / "model.safetensors").items()}

    lines.clear()
    metrics = finetune_sentiment(data, tiny_base, out, config=config, resume=True, progress=False, log=lines.append)
    assert any("member 1/2" in line and "reused" in line for line in lines), lines
    soup = metrics["soup"]
    assert [m["data_order_seed"] for m in soup["members"]] == [5, 6]
    assert list(metrics["hyperparameters"]["soup_order_seeds"]) == [5, 6]
    # Same head initialisation and validation slice (seed 13), another data order: the members differ.
    first_member, second_member = soup["members"]
    assert first_member["validation"] != second_member["validation"] or first_member["test"] != second_member["test"]
    assert set(soup["validation"]) >= {"macro_f1", "hostile_recall"} and metrics["test"]["n"] > 0
    assert not members.exists(), "members are removed once the soup is written"
    # The soup is the mean of the members: recompute it from the first member and check one trained layer.
    saved = load_file(out / "model.safetensors")
    name = next(key for key in saved if key.endswith("classifier.weight"))
    assert not np.array_equal(saved[name], kept[name]), "the soup is not just the first member"
    (prediction,) = SentimentEngine.from_directory(out, device="cpu").predict_batch(["so mad right now"])
    assert prediction.emotion in prediction.probabilities


@pytest.mark.integration
def test_soup_members_train_side_by_side_in_their_own_processes(tiny_base: Path, tmp_path: Path) -> None:
    """member_processes=2: both members start at once in spawned processes, their log lines come back, and the
    first member is the run its config makes when trained alone here (same best epoch, same held-out figure up
    to float noise from the other thread count)."""
    data = write_tsv(tmp_path / "d.tsv", sample_rows())
    config = FinetuneConfig(**{**TINY_TRAINING, "epochs": 2.0, "soup_order_seeds": (5, 6)})
    lines: list[str] = []
    metrics = finetune_sentiment(
        data, tiny_base, tmp_path / "soup", config=config, progress=False, log=lines.append, member_processes=2
    )
    started = [line for line in lines if "started in its own process" in line]
    assert len(started) == 2, lines
    assert any(line.startswith("soup member 2/2") and "epoch" in line for line in lines), "member logs reach us"
    assert [m["data_order_seed"] for m in metrics["soup"]["members"]] == [5, 6]
    assert not work_dir_for((tmp_path / "soup").resolve()).exists()

    # The first member alone, in this process, with the member's config: the same run.
    from dataclasses import replace

    alone = finetune_sentiment(
        data, tiny_base, tmp_path / "alone", progress=False, log=_quiet,
        config=replace(config, soup_order_seeds=(), data_order_seed=5),
    )  # fmt: skip
    first = metrics["soup"]["members"][0]
    assert first["best_step"] == alone["best_step"]
    assert first["test"]["macro_f1"] == pytest.approx(alone["test"]["macro_f1"], abs=0.02)
    (prediction,) = SentimentEngine.from_directory(tmp_path / "soup", device="cpu").predict_batch(["so mad"])
    assert prediction.emotion in prediction.probabilities


@pytest.mark.integration
def test_a_failing_member_process_stops_the_others_and_raises_its_error(tiny_base: Path, tmp_path: Path) -> None:
    import multiprocessing

    from sentiment.training.parallel import MemberJob, train_in_processes

    data = write_tsv(tmp_path / "d.tsv", sample_rows())
    long_run = FinetuneConfig(**{**TINY_TRAINING, "epochs": 500.0})
    jobs = [
        MemberJob("long", data, tiny_base, tmp_path / "long", long_run),
        MemberJob("broken", data, tmp_path / "no-such-base", tmp_path / "broken", long_run),
    ]
    with pytest.raises(FileNotFoundError, match="no-such-base") as raised:
        train_in_processes(jobs, processes=2, progress=False, log=_quiet)
    assert any("in broken:" in note and "Traceback" in note for note in raised.value.__notes__), "remote traceback"
    assert not multiprocessing.active_children(), "the long member was stopped, not left training"
    assert not (tmp_path / "long").exists() and not (tmp_path / "broken").exists()


def test_member_processes_refuse_callbacks(tiny_base: Path, tmp_path: Path) -> None:
    data = write_tsv(tmp_path / "d.tsv", sample_rows())
    config = FinetuneConfig(**{**TINY_TRAINING, "epochs": 1.0, "soup_order_seeds": (5, 6)})
    with pytest.raises(ValueError, match="callbacks"):
        finetune_sentiment(
            data, tiny_base, tmp_path / "out", config=config, progress=False, log=_quiet,
            callbacks=[_interrupt_in_member(1)], member_processes=2,
        )  # fmt: skip


def test_average_checkpoints_is_the_mean_and_refuses_other_labels(
    tiny_trained: tuple[Path, dict], tiny_base: Path, tmp_path: Path
) -> None:
    from sentiment.training.finetune import average_checkpoints

    trained, _ = tiny_trained
    data = write_tsv(tmp_path / "d.tsv", sample_rows())
    other = tmp_path / "other"
    config = FinetuneConfig(**{**TINY_TRAINING, "epochs": 2.0, "data_order_seed": 99})
    finetune_sentiment(data, tiny_base, other, config=config, progress=False, log=_quiet)
    labels = average_checkpoints([trained, other], tmp_path / "soup")
    a, b = load_file(trained / "model.safetensors"), load_file(other / "model.safetensors")
    soup = load_file(tmp_path / "soup" / "model.safetensors")
    for name in a:
        np.testing.assert_allclose(soup[name], (a[name] + b[name]) / 2, rtol=1e-6, atol=1e-7, err_msg=name)
    assert labels == json.loads((trained / "metrics.json").read_text())["labels"]

    rows = [row for row in sample_rows() if row["emotion"] != "disgust"]  # a checkpoint with other labels
    fewer = tmp_path / "fewer"
    finetune_sentiment(write_tsv(tmp_path / "f.tsv", rows), tiny_base, fewer, config=config, progress=False, log=_quiet)
    with pytest.raises(ValueError, match="do not match|labels differ"):
        average_checkpoints([trained, fewer], tmp_path / "refused")


class _Interrupt(Exception):
    pass


def _interrupt_after_first_save():
    from transformers import TrainerCallback

    class Interrupt(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):  # noqa: ANN001
            raise _Interrupt(f"stopped at step {state.global_step}")

    return Interrupt()


def test_interrupted_run_leaves_nothing_and_resumes(tiny_base: Path, tmp_path: Path) -> None:
    data = write_tsv(tmp_path / "d.tsv", sample_rows())
    out = tmp_path / "out"
    config = FinetuneConfig(**{**TINY_TRAINING, "epochs": 3.0, "freeze": "embeddings", "freeze_layers": 1})
    with pytest.raises(_Interrupt):
        finetune_sentiment(
            data, tiny_base, out, config=config, progress=False, log=_quiet, callbacks=[_interrupt_after_first_save()]
        )
    assert not out.exists(), "nothing half-written at the output path"
    assert any(work_dir_for(out.resolve()).glob("checkpoint-*"))

    metrics = finetune_sentiment(data, tiny_base, out, config=config, resume=True, progress=False, log=_quiet)
    steps_per_epoch = metrics["resumed_from_step"]
    assert steps_per_epoch and metrics["global_steps"] == 3 * steps_per_epoch

    # Freezing: embeddings and the lowest layer are exactly the base's; the layer above them was trained.
    base = load_file(tiny_base / "model.safetensors")
    tuned = load_file(out / "model.safetensors")

    def weight(state: dict, name: str) -> np.ndarray:
        return next(value for key, value in state.items() if key.endswith(name))

    for frozen in ("embeddings.word_embeddings.weight", "encoder.layer.0.attention.self.query.weight"):
        np.testing.assert_array_equal(weight(base, frozen), weight(tuned, frozen))
    assert not np.array_equal(
        weight(base, "encoder.layer.1.attention.self.query.weight"),
        weight(tuned, "encoder.layer.1.attention.self.query.weight"),
    )
    (prediction,) = SentimentEngine.from_directory(out, device="cpu").predict_batch(["so mad right now"])
    assert prediction.emotion in prediction.probabilities


def test_cli_options_and_run(tiny_base: Path, tmp_path: Path) -> None:
    data = write_tsv(tmp_path / "d.tsv", sample_rows())
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    options = vars(
        parser.parse_args(
            ["--data", str(data), "--base", str(tiny_base), "--out", str(tmp_path / "out"), "--epochs", "2"]
            + ["--lr", "2e-3", "--batch-size", "8", "--freeze", "all-but-head", "--no-progress", "--seed", "4"]
        )
    )
    assert options["average_gate"] is None, "unset options keep FinetuneConfig's defaults"
    always = parser.parse_args(["--data", "d", "--base", "b", "--out", "o", "--average-always"])
    assert always.average_gate is False
    options["verbosity"] = 1  # Django adds its own options; run() ignores them
    metrics = run(options)
    assert metrics["hyperparameters"]["freeze"] == "all-but-head"
    assert metrics["hyperparameters"]["seed"] == 4 and metrics["hyperparameters"]["epochs"] == 2.0
    assert (tmp_path / "out" / "model.safetensors").is_file()
    with pytest.raises(FileExistsError):
        run(options)  # an existing output is never overwritten silently


def test_cli_reports_bad_data_before_training(tiny_base: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("text\temotion\nfine\tjoy\nhmm\tconfusion\n", encoding="utf-8")
    options = {"data": str(bad), "base": str(tiny_base), "out": str(tmp_path / "out"), "progress": False}
    with pytest.raises(DataError, match=r"bad\.tsv:3: unknown emotion 'confusion'"):
        run(options)
    assert not (tmp_path / "out").exists()


def test_class_weights_favour_rare_labels() -> None:
    examples = [Example("x", "joy", False, "en", "f:1")] * 8 + [Example("y", "anger", True, "en", "f:2")] * 2
    labels = label_set(examples)
    weights = dict(zip(labels, class_weight_vector(examples, labels), strict=True))
    assert labels == ["anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral", "anger+hostile"]
    assert weights["anger+hostile"] == pytest.approx(4 * weights["joy"])
    assert weights["sadness"] == 0.0  # absent from the data: never a target


def test_build_default_model_with_an_existing_encoder(tiny_base: Path, tmp_path: Path) -> None:
    """The run command's entry point: reuses the encoder it is given, builds a loadable checkpoint, and puts
    torch's thread count back afterwards."""
    import torch

    from sentiment.training import build_default_model

    data = tmp_path / "data"
    data.mkdir()
    write_tsv(data / "chat_emotions.xx.tsv", sample_rows())
    threads = torch.get_num_threads()
    lines: list[str] = []
    metrics = build_default_model(
        tmp_path / "models" / "default", data, encoder_dir=tiny_base, progress=False, log=lines.append, resume=True
    )
    assert torch.get_num_threads() == threads
    assert any("no saved state found" in line for line in lines), "resume reaches the run (build_models --resume)"
    assert not (tmp_path / "models" / "multilingual-e5-small").exists(), "no import when an encoder is given"
    assert metrics["hyperparameters"]["learning_rate"] == 1e-4 and metrics["test"]["n"] > 0
    # The default recipe is one run that tries the mean of the epochs up to its best.
    assert metrics["weight_average"]["epochs"] >= 1 and "soup" not in metrics
    (prediction,) = SentimentEngine.from_directory(tmp_path / "models" / "default", device="cpu").predict_batch(["ok"])
    assert prediction.emotion in prediction.probabilities


def test_build_models_threads_choice() -> None:
    """A number is taken as given; auto is every core on an idle machine and one on a busy one."""
    import os

    from sentiment.management.commands.build_models import training_threads

    assert training_threads("3") == 3 and training_threads("0") == 1
    assert training_threads("auto") in {1, os.cpu_count()}


def test_probes_beside_the_data_are_scored_never_trained_on_and_misses_named(tiny_base: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "probes").mkdir(parents=True)
    write_tsv(data / "sample.tsv", sample_rows())
    # The same text expected both ways: whatever the model says, exactly one of the pair is a miss.
    probes = [
        {"text": "thanks so much, happy today", "emotion": "joy", "language": "en", "hostile": "0"},
        {"text": "you idiot, furious again", "emotion": "anger", "language": "en", "hostile": "1"},
        {"text": "you idiot, furious again", "emotion": "anger", "language": "de", "hostile": "0"},
    ]
    write_tsv(data / "probes" / "friendly.tsv", probes, columns=("text", "emotion", "language", "hostile"))
    log: list[str] = []
    config = FinetuneConfig(**(TINY_TRAINING | {"epochs": 3.0}))
    metrics = finetune_sentiment(data, tiny_base, tmp_path / "out", config=config, progress=False, log=log.append)

    report = metrics["probes"]
    assert report["n"] == 3 and report["hostile_threshold"] == 0.5
    assert report["wrong"] == len(report["misses"]) and 1 <= report["wrong"] <= 3
    assert sum(miss["text"] == "you idiot, furious again" for miss in report["misses"]) == 1
    engine = SentimentEngine.from_directory(tmp_path / "out")
    texts = [probe["text"] for probe in probes]
    scores = {text: p.hostile_score for text, p in zip(texts, engine.predict_batch(texts), strict=True)}
    for miss in report["misses"]:
        assert (scores[miss["text"]] >= 0.5) != miss["hostile"]
        assert abs(miss["hostile_score"] - scores[miss["text"]]) < 1e-3
    assert metrics["split_sizes"]["train"] + metrics["split_sizes"]["validation"] == sum(
        row["split"] == "train" for row in sample_rows()
    ), "probe rows are not training rows"
    assert any(line.startswith(f"Probes: {report['wrong']} of 3 flagged wrongly") for line in log)
    assert "## Probes" in (tmp_path / "out" / "README.md").read_text()


def test_no_probes_folder_no_probe_report(tiny_trained: tuple[Path, dict]) -> None:
    assert "probes" not in tiny_trained[1]
