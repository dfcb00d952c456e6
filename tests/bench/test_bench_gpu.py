"""The GPU recording: its committed report is what the committed figures render to, those figures hold every
phase the script runs, and on a machine without CUDA the script refuses instead of recording CPU figures as GPU
ones. (The recording itself needs a GPU; CI has none.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bench.bench_gpu import render
from tests.conftest import run_script

ROOT = Path(__file__).resolve().parents[2]
RECORDED = ROOT / "bench" / "reports" / "gpu.json"


def test_committed_gpu_report_is_the_rendering_of_the_committed_figures() -> None:
    results = json.loads(RECORDED.read_text(encoding="utf-8"))
    assert (ROOT / "bench" / "reports" / "gpu.md").read_text(encoding="utf-8") == render(results)


def test_recorded_figures_cover_every_phase_on_a_cuda_device() -> None:
    results = json.loads(RECORDED.read_text(encoding="utf-8"))
    phases = results["phases"]
    for name in ("train_seed13", "fp16_vs_fp32", "bench_sentiment", "bench_engines"):
        assert phases[name]["ok"], name
    assert phases["fp16_vs_fp32"]["result"]["served_device"].startswith("cuda")
    assert phases["fp16_vs_fp32"]["result"]["served_precision"] == "fp16"
    batches = {run["batch_size"] for run in phases["bench_sentiment"]["result"]["runs"] if run["device"] == "cuda"}
    assert {1, 8, 32} <= batches
    engine_batches = {
        run["batch_size"] for item in phases["bench_engines"]["result"]["results"] for run in item["runs"]
    }
    assert {1, 8, 32} <= engine_batches


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU host the script records instead")
def test_without_cuda_the_script_refuses() -> None:
    done = run_script("bench/bench_gpu.py", "--deadline", "1", timeout=120)
    assert done.returncode == 2 and "no CUDA device" in done.stderr
