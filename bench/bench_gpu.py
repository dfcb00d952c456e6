"""The GPU recording (issues 4 and 8) in one short run, for a host with CUDA.

    python bench/bench_gpu.py [--encoder DIR] [--extra-seeds 7,21] [--deadline 420]
    python bench/bench_gpu.py --render bench/reports/gpu.json    # only rewrite bench/reports/gpu.md

Phases, each timed; a phase that fails is recorded with its traceback and the next one still runs:

1. ``train``: the default emotion recipe (``DEFAULT_CONFIG``, unchanged) fine-tuned on CUDA by the project's
   pipeline; mixed precision ``auto`` picks bf16 where the GPU has it. Held-out figures as in docs/models.md.
2. ``fp16_vs_fp32``: that checkpoint loaded the way ``sentiment.runtime`` loads it (no device given: CUDA,
   fp16) against the same checkpoint on the CPU in fp32, on the held-out rows.
3. ``bench_sentiment``: ``bench_sentiment.py --device cuda`` (batch 1..32, fp16): reports/sentiment-cuda.md.
4. ``bench_engines``: ``bench_engines.py --device cuda --engines transformers``: reports/engines-cuda.md.
5. while ``--deadline`` allows another run: more data-order seeds of the same recipe, and the soups (weight
   means, :func:`average_checkpoints`) of the complete runs.

Writes bench/out/gpu.json and bench/reports/gpu.md, and copies gpu.json into bench/reports/: it can only be
remade on a GPU, so the raw figures are kept beside the report.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPORTS = ROOT / "bench" / "reports"


class Recorder:
    """Runs phases, keeps their timings, results and errors, and saves the JSON after each one."""

    def __init__(self, path: Path, deadline_s: float):
        self.path = path
        self.deadline_s = deadline_s
        self.started = time.time()
        self.results: dict[str, Any] = {"phases": {}}

    def elapsed(self) -> float:
        return round(time.time() - self.started, 1)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.results, indent=2, default=str) + "\n", encoding="utf-8")

    def phase(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        began = time.time()
        print(f"[{self.elapsed():6.1f}s] {name}", flush=True)
        try:
            value = fn(*args, **kwargs)
            self.results["phases"][name] = {"seconds": round(time.time() - began, 1), "ok": True, "result": value}
        except Exception as exc:  # later phases are independent of a failed one
            value = None
            self.results["phases"][name] = {
                "seconds": round(time.time() - began, 1),
                "ok": False,
                "error": repr(exc),
                "traceback": traceback.format_exc()[-3000:],
            }
            traceback.print_exc()
        self.save()
        return value

    def has_time_for(self, seconds: float) -> bool:
        if self.elapsed() + seconds < self.deadline_s:
            return True
        print(f"[{self.elapsed()}s] stopping: {seconds:.0f} s needed, deadline {self.deadline_s:.0f} s", flush=True)
        return False


def environment() -> dict[str, Any]:
    import torch
    import transformers

    info: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cpus": os.cpu_count(),
        "cuda_available": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        info["device"] = torch.cuda.get_device_name(0)
        info["capability"] = list(torch.cuda.get_device_capability(0))
        info["bf16"] = torch.cuda.is_bf16_supported()
    return info


def headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The figures docs/models.md reports, from a training run's metrics or an ``evaluate_engine`` result."""
    test = metrics.get("test", metrics)
    keys = ("macro_f1", "accuracy", "hostile_precision", "hostile_recall", "hostile_average_precision")
    out: dict[str, Any] = {key: round(test[key], 4) for key in keys if key in test}
    out["per_language_macro_f1"] = {lang: round(fig["macro_f1"], 3) for lang, fig in test["per_language"].items()}
    out["surprise_recall"] = round(test["per_class"]["surprise"]["recall"], 3)
    for key in ("train_seconds", "best_step", "global_steps"):
        if key in metrics:
            out[key] = metrics[key]
    if "test_int8" in metrics:
        out["int8_macro_f1"] = round(metrics["test_int8"]["macro_f1"], 4)
    return out


def describe_data() -> str:
    from sentiment.training.data import read_sentiment_records

    records = read_sentiment_records(ROOT / "data" / "sentiment")
    test = sum(1 for record in records if record.split == "test")
    return f"data/sentiment/, {len(records) - test} train and {test} test rows"


def held_out():  # noqa: ANN201 (a list of training Examples)
    from sentiment.training.data import load_splits

    return load_splits(ROOT / "data" / "sentiment", seed=13).test


def train(encoder: Path, out: Path, **changes: Any) -> dict[str, Any]:
    from sentiment.training.default_model import DEFAULT_CONFIG
    from sentiment.training.finetune import finetune_sentiment

    config = dataclasses.replace(DEFAULT_CONFIG, **changes)
    metrics = finetune_sentiment(
        ROOT / "data" / "sentiment", encoder, out, config=config, overwrite=True, progress=False
    )
    return headline(metrics)


def cuda_against_cpu(model_dir: Path) -> dict[str, Any]:
    from bench.bench_sentiment import compare_answers
    from sentiment.engine import SentimentEngine
    from sentiment.training.finetune import evaluate_engine

    examples = held_out()
    served = SentimentEngine.from_directory(model_dir, batch_size=32)  # as sentiment.runtime loads it
    cpu = SentimentEngine.from_directory(model_dir, device="cpu", batch_size=64)
    return {
        "served_device": str(served.device),
        "served_precision": served.precision,
        "served": headline(evaluate_engine(served, examples)),
        "cpu_fp32": headline(evaluate_engine(cpu, examples)),
        **compare_answers(cpu, served, [example.text for example in examples]),
    }


def run_bench(args: list[str], figures: Path, timeout: float) -> dict[str, Any]:
    run = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    print(run.stdout[-3000:], run.stderr[-2000:], flush=True)
    run.check_returncode()
    return json.loads(figures.read_text(encoding="utf-8"))


def soup(members: list[Path], out: Path) -> dict[str, Any]:
    from sentiment.training.finetune import average_checkpoints, evaluate_checkpoint

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    average_checkpoints(members, out)
    return headline(evaluate_checkpoint(out, held_out()))


def record(options: argparse.Namespace) -> dict[str, Any]:
    from sentiment.training.default_model import DEFAULT_CONFIG, ENCODER_DIR_NAME
    from sentiment.training.encoder import import_e5_encoder

    recorder = Recorder(ROOT / "bench" / "out" / "gpu.json", options.deadline)
    recorder.results["environment"] = recorder.phase("environment", environment)
    recorder.results["data"] = describe_data()
    encoder = options.encoder or ROOT / "var" / "models" / "sentiment" / ENCODER_DIR_NAME
    if not (encoder / "config.json").is_file():
        recorder.phase("import_encoder", import_e5_encoder, encoder)
    work = options.work
    seed = DEFAULT_CONFIG.order_seed  # the shipped run first: every other figure is compared with it
    runs = {seed: work / f"seed-{seed}"}
    if recorder.phase(f"train_seed{seed}", train, encoder, runs[seed]) is None:
        return recorder.results
    run_seconds = recorder.results["phases"][f"train_seed{seed}"]["seconds"]
    recorder.phase("fp16_vs_fp32", cuda_against_cpu, runs[seed])
    recorder.phase(
        "bench_sentiment",
        run_bench,
        ["bench/bench_sentiment.py", "--device", "cuda", "--model", str(runs[seed])],
        ROOT / "bench" / "out" / "sentiment-cuda.json",
        300,
    )
    recorder.phase(
        "bench_engines",
        run_bench,
        ["bench/bench_engines.py", "--device", "cuda", "--engines", "transformers"],
        ROOT / "bench" / "out" / "engines-cuda.json",
        300,
    )
    for extra in options.extra_seeds:
        if not recorder.has_time_for(run_seconds + 15):
            break
        runs[extra] = work / f"seed-{extra}"
        if recorder.phase(f"train_seed{extra}", train, encoder, runs[extra], data_order_seed=extra) is None:
            runs.pop(extra)
            continue
        members = list(runs)
        recorder.phase(f"soup_{'_'.join(map(str, members))}", soup, list(runs.values()), work / "soup")
    recorder.results["total_seconds"] = recorder.elapsed()
    recorder.save()
    return recorder.results


def _language_cells(figures: dict[str, Any], languages: list[str]) -> str:
    return " | ".join(f"{figures['per_language_macro_f1'].get(lang, float('nan')):.3f}" for lang in languages)


def render(results: dict[str, Any]) -> str:
    """bench/reports/gpu.md from the recorded JSON (phases, environment, the two benchmarks' own figures)."""
    env = results.get("environment") or {}
    phases = results["phases"]
    lines = [
        "# GPU recording",
        "",
        f"Recorded {env.get('when', '?')} by `python bench/bench_gpu.py` on {env.get('device', 'no GPU')} "
        f"(compute capability {'.'.join(map(str, env.get('capability', [])))}, bf16 {env.get('bf16')}), "
        f"{env.get('cpus')} CPUs, Python {env.get('python')}, torch {env.get('torch')}, transformers "
        f"{env.get('transformers')}. The recipe and data were the shipped ones at the time (data: "
        f"{results.get('data', 'data/sentiment/ as committed')}); nothing in the code was changed for CUDA.",
        "",
        "## The default emotion recipe trained on CUDA",
        "",
    ]
    trained = {name: phase for name, phase in phases.items() if name.startswith(("train_", "soup_")) and phase["ok"]}
    if trained:
        languages = sorted(next(iter(trained.values()))["result"]["per_language_macro_f1"])
        lines += [
            "Held-out split (923 rows). Training in bf16 mixed precision (`precision=auto`); `train s` is the",
            "Trainer's own time, `phase s` includes the held-out evaluation (fp32 and int8, on the CPU).",
            "",
            "| run | macro-F1 | " + " | ".join(languages) + " | hostile P / R at 0.5 | hostile AP | surprise R "
            "| train s | phase s |",
            "|---|---:|" + "---:|" * len(languages) + "---|---:|---:|---:|---:|",
        ]
        for name, phase in trained.items():
            fig = phase["result"]
            lines.append(
                f"| {name.replace('_', ' ')} | {fig['macro_f1']:.4f} | {_language_cells(fig, languages)} | "
                f"{fig['hostile_precision']:.3f} / {fig['hostile_recall']:.3f} | "
                f"{fig.get('hostile_average_precision', float('nan')):.3f} | {fig['surprise_recall']:.3f} | "
                f"{fig.get('train_seconds', '')} | {phase['seconds']} |"
            )
        lines.append("")
    agreement = phases.get("fp16_vs_fp32", {})
    if agreement.get("ok"):
        fig = agreement["result"]
        lines += [
            "## Served on CUDA in fp16 against the CPU in fp32",
            "",
            f"The checkpoint loaded as `sentiment.runtime` loads it (no device given) ran on "
            f"`{fig['served_device']}` in {fig['served_precision']}. On the held-out rows it gave the CPU fp32 "
            f"engine's emotion for {100 * fig['same_emotion']:.1f} % of messages and its hostile flag at 0.5 for "
            f"{100 * fig['same_flag_at_0_5']:.1f} %; the largest hostile-score difference was "
            f"{fig['max_hostile_score_difference']:.4f}. Macro-F1 {fig['served']['macro_f1']:.4f} (CUDA fp16) "
            f"against {fig['cpu_fp32']['macro_f1']:.4f} (CPU fp32).",
            "",
        ]
    for name, title in (("bench_sentiment", "Emotion engine throughput"), ("bench_engines", "Translation engine")):
        phase = phases.get(name, {})
        lines += [f"## {title} on CUDA", ""]
        if not phase.get("ok"):
            lines += [f"Not recorded: {phase.get('error', 'phase not run')}", ""]
            continue
        data = phase["result"]
        if name == "bench_sentiment":
            lines += ["| batch | ms/msg p50 | ms/msg p90 | msg/s |", "|---:|---:|---:|---:|"]
            lines += [
                f"| {r['batch_size']} | {r['per_message_p50_ms']:.2f} | {r['per_message_p90_ms']:.2f} "
                f"| {r['throughput_msgs_per_s']:.0f} |"
                for r in data["runs"]
                if r["device"] == "cuda"
            ]
            lines += ["", "Full table: reports/sentiment-cuda.md.", ""]
        else:
            lines += ["| engine | batch | sentences/s | output tokens/s |", "|---|---:|---:|---:|"]
            for item in data["results"]:
                lines += [
                    f"| {item['engine']} | {r['batch_size']} | {r['sentences_per_s']} | {r['tokens_per_s']} |"
                    for r in item["runs"]
                ]
            lines += [
                "",
                f"Model: {data.get('model_note', data.get('model'))}. Full table: reports/engines-cuda.md.",
                "",
            ]
    notes = results.get("notes")
    if notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in notes] + [""]
    return "\n".join(lines)


def write_outputs(results: dict[str, Any]) -> None:
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "gpu.json").write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    (REPORTS / "gpu.md").write_text(render(results), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", type=Path, default=None, help="imported e5 encoder (default: var/models/...)")
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "out" / "gpu-runs")
    parser.add_argument("--extra-seeds", default="7,21", help="data-order seeds trained while time allows")
    parser.add_argument("--deadline", type=float, default=420, help="seconds after which no run is started")
    parser.add_argument("--render", type=Path, default=None, help="only rewrite gpu.md from this JSON")
    options = parser.parse_args(argv)
    if options.render:
        write_outputs(json.loads(options.render.read_text(encoding="utf-8")))
        return 0
    import torch

    if not torch.cuda.is_available():
        parser.error("no CUDA device: this recording is for a GPU host (the CPU figures: bench/report.py)")
    options.extra_seeds = [int(seed) for seed in options.extra_seeds.split(",") if seed.strip()]
    results = record(options)
    write_outputs(results)
    failed = [name for name, phase in results["phases"].items() if not phase["ok"]]
    print(f"wrote bench/reports/gpu.md; failed phases: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
