"""Fixtures for the translation engine tests: one tiny Marian model trained once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach a model hub


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One intra-op thread: on a small shared machine, spinning OpenMP threads make tiny models ~10x slower."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def parallel_tsv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from translation.training.synthetic import generate_pairs, write_tsv

    return write_tsv(generate_pairs(900, seed=3), tmp_path_factory.mktemp("data") / "en-es.tsv")


@pytest.fixture(scope="session")
def tiny_run(parallel_tsv: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Train a small en->es Marian model through the real pipeline (seconds); returns its metrics."""
    from translation.training.finetune import TranslationTrainingConfig, finetune_translation

    out = tmp_path_factory.mktemp("models") / "tiny-en-es"
    config = TranslationTrainingConfig(
        data=parallel_tsv,
        out=out,
        source="en",
        target="es",
        init="tiny",
        max_steps=150,
        eval_steps=75,
        batch_size=32,
        lr=3e-3,
        warmup=0.05,
        dropout=0.0,  # a 150-step run learns faster without it
        ratios=(0.9, 0.05, 0.05),
        max_eval_samples=45,
        vocab_size=600,
        seed=5,
        threads=1,  # session fixtures start before the module's one_torch_thread fixture
        log=lambda line: None,
    )
    return finetune_translation(config)


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_run: dict) -> Path:
    return Path(tiny_run["out"])
