"""Emotion engine latency and throughput at batch sizes 1..32 (CPU: fp32 and int8, one torch thread and the
default; GPU fp16 when there is one).

    python bench/bench_sentiment.py [--model DIR] [--short] [--device cpu|cuda]

Prints a table and writes bench/out/sentiment.json and bench/reports/sentiment.md (``--device cuda``:
sentiment-cuda.json and sentiment-cuda.md). The messages are the
held-out rows of data/sentiment/ (real chat lengths), cycled. On the CPU every batch size is timed in fp32 and
in int8 back to back, so the speed-up is a ratio of neighbouring runs, and the two precisions' answers on the
same messages are compared. Goal (issue 4): p50 under 20 ms per message on one core at batch 8, in fp32 (what a
CPU worker serves unless BRIDGE_SENTIMENT_CPU_INT8=1).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_engines import peak_rss_mb  # noqa: E402 (needs ROOT on sys.path first)

BATCH_SIZES = (1, 2, 4, 8, 16, 32)
GOAL_MS = 20.0


def default_model_dir() -> Path:
    explicit = os.environ.get("BRIDGE_SENTIMENT_MODEL_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("BRIDGE_MODEL_ROOT") or ROOT / "var" / "models") / "sentiment" / "default"


def load_messages(limit: int = 512) -> list[str]:
    from sentiment.training.data import read_sentiment_records

    records = read_sentiment_records(ROOT / "data" / "sentiment")
    texts = [r["text"] for r in records if r.split == "test"] or [r["text"] for r in records]
    return texts[:limit]


def measure(engine, messages: list[str], batch_size: int, seconds: float, min_batches: int) -> dict:  # noqa: ANN001
    """Time predict_batch on consecutive slices of ``messages`` for about ``seconds``."""
    engine.predict_batch(messages[:batch_size])  # warm-up: first calls allocate
    timings = []
    cursor = 0
    started = time.perf_counter()
    while len(timings) < min_batches or time.perf_counter() - started < seconds:
        batch = [messages[(cursor + i) % len(messages)] for i in range(batch_size)]
        cursor += batch_size
        begin = time.perf_counter()
        engine.predict_batch(batch)
        timings.append(time.perf_counter() - begin)
    per_message_ms = sorted(1000 * t / batch_size for t in timings)
    total = sum(timings)
    return {
        "batch_size": batch_size,
        "batches": len(timings),
        "batch_p50_ms": 1000 * statistics.median(timings),
        "per_message_p50_ms": statistics.median(per_message_ms),
        "per_message_p90_ms": per_message_ms[int(0.9 * (len(per_message_ms) - 1))],
        "throughput_msgs_per_s": batch_size * len(timings) / total,
    }


def goal_setting_run(runs: list[dict], precision: str) -> dict | None:
    """The run the goal is about: CPU, one torch thread, batch 8, in ``precision``."""
    wanted = ("cpu", precision, 1, 8)
    return next(
        (r for r in runs if (r["device"], r.get("precision", "fp32"), r["torch_threads"], r["batch_size"]) == wanted),
        None,
    )


def compare_answers(reference, other, messages: list[str]) -> dict:  # noqa: ANN001
    """How often ``other`` (int8 on the CPU, fp16 on CUDA) gives the ``reference`` engine's answer (fp32 on the
    CPU) on the same messages."""
    pairs = list(zip(reference.predict_batch(messages), other.predict_batch(messages), strict=True))
    return {
        "messages": len(pairs),
        "same_emotion": sum(a.emotion == b.emotion for a, b in pairs) / len(pairs),
        "same_flag_at_0_5": sum((a.hostile_score >= 0.5) == (b.hostile_score >= 0.5) for a, b in pairs) / len(pairs),
        "max_hostile_score_difference": max(abs(a.hostile_score - b.hostile_score) for a, b in pairs),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="checkpoint dir (default: the built default model)")
    parser.add_argument("--short", action="store_true", help="quick run (under a minute)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cpu, plus cuda when available)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench")
    options = parser.parse_args(argv)

    import torch

    from sentiment.engine import SentimentEngine

    model_dir = options.model or default_model_dir()
    if not (model_dir / "config.json").is_file():
        parser.error(f"no checkpoint at {model_dir}: build it (python manage.py build_models) or pass --model")
    messages = load_messages()
    seconds, min_batches = (0.8, 3) if options.short else (4.0, 10)
    default_threads = torch.get_num_threads()
    devices = [options.device] if options.device else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

    runs = []
    agreement = None
    one_engine_rss_mb = None
    for device in devices:
        thread_settings = [1, default_threads] if device == "cpu" else [default_threads]
        engines = [SentimentEngine.from_directory(model_dir, device=device, batch_size=max(BATCH_SIZES))]
        # What a worker holds: one engine (measured before the bench derives a second one beside it).
        one_engine_rss_mb = one_engine_rss_mb or peak_rss_mb()
        if device == "cpu":
            engines.append(engines[0].with_cpu_int8())
            agreement = compare_answers(*engines, messages)
        for threads in dict.fromkeys(thread_settings):
            torch.set_num_threads(threads)
            for batch_size in BATCH_SIZES:
                for engine in engines:
                    result = measure(engine, messages, batch_size, seconds, min_batches)
                    result.update(device=device, torch_threads=threads, precision=engine.precision)
                    runs.append(result)
                    print(
                        f"{device:4} {engine.precision} threads={threads} batch={batch_size:2}: "
                        f"{result['per_message_p50_ms']:7.2f} ms/msg p50, "
                        f"{result['per_message_p90_ms']:7.2f} p90, {result['throughput_msgs_per_s']:7.1f} msg/s"
                    )
        torch.set_num_threads(default_threads)

    goal_run = goal_setting_run(runs, "fp32")
    report = {
        "model": str(model_dir),
        "short": options.short,
        "messages": len(messages),
        "mean_message_chars": statistics.mean(len(m) for m in messages),
        "machine": {
            "cpu_count": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "loadavg_1m": os.getloadavg()[0],
        },
        "goal": {
            "per_message_p50_ms_at_batch8_one_thread": GOAL_MS,
            "precision": "fp32",
            "measured": goal_run["per_message_p50_ms"] if goal_run else None,
            "met": bool(goal_run and goal_run["per_message_p50_ms"] < GOAL_MS),
        },
        "int8_vs_fp32": agreement,
        "runs": runs,
        # This process's peak resident memory once the first engine was loaded: torch and one model, as a
        # sentiment worker holds them (a worker adds Django and Celery, ~100 MB).
        "peak_rss_mb": one_engine_rss_mb,
    }
    # A GPU-only run writes files of its own: the committed CPU report is what bench/report.py rebuilds here.
    suffix = "-cuda" if devices == ["cuda"] else ""
    (options.out / "out").mkdir(parents=True, exist_ok=True)
    (options.out / "reports").mkdir(parents=True, exist_ok=True)
    (options.out / "out" / f"sentiment{suffix}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (options.out / "reports" / f"sentiment{suffix}.md").write_text(render_markdown(report), encoding="utf-8")
    print(f"goal p50 < {GOAL_MS} ms/msg at batch 8 on one thread: {report['goal']}")
    return report


def render_markdown(report: dict) -> str:
    lines = [
        "# Sentiment engine benchmark",
        "",
        f"Model: `{report['model']}`; {report['messages']} held-out chat messages "
        f"(mean {report['mean_message_chars']:.0f} characters), cycled. Machine: {report['machine']['cpu_count']} "
        f"CPUs ({report['machine']['processor']}), torch {report['machine']['torch']}, "
        f"GPU: {report['machine']['cuda'] or 'none'}, load average at the end {report['machine']['loadavg_1m']:.1f}"
        f"{' (short run)' if report['short'] else ''}.",
        "",
        "| device | precision | torch threads | batch | ms/msg p50 | ms/msg p90 | msg/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in report["runs"]:
        lines.append(
            f"| {run['device']} | {run.get('precision', 'fp32')} | {run['torch_threads']} | {run['batch_size']} "
            f"| {run['per_message_p50_ms']:.2f} | {run['per_message_p90_ms']:.2f} "
            f"| {run['throughput_msgs_per_s']:.1f} |"
        )
    goal = report["goal"]
    if goal["measured"] is None:
        lines += [
            "",
            f"The goal (p50 under {GOAL_MS:.0f} ms per message on one CPU core at batch 8) is a CPU figure: "
            "this run did not time the CPU (reports/sentiment.md does).",
        ]
    else:
        lines += [
            "",
            f"Goal: p50 under {GOAL_MS:.0f} ms per message on one core at batch 8, in fp32 (what a CPU worker serves "
            f"by default): {goal['measured']:.2f} ms ({'met' if goal['met'] else 'not met'}).",
        ]
    int8_run = goal_setting_run(report["runs"], "int8")
    if int8_run and goal["measured"]:
        lines.append(
            f"int8 (opt-in, BRIDGE_SENTIMENT_CPU_INT8=1) in the neighbouring run: {int8_run['per_message_p50_ms']:.2f} "
            f"ms, {goal['measured'] / int8_run['per_message_p50_ms']:.2f}x faster than fp32."
        )
    agreement = report.get("int8_vs_fp32")
    if agreement:
        lines += [
            "",
            f"int8 against fp32 on the same {agreement['messages']} messages: same emotion "
            f"{100 * agreement['same_emotion']:.1f} %, same hostile flag at 0.5 "
            f"{100 * agreement['same_flag_at_0_5']:.1f} %, largest hostile-score difference "
            f"{agreement['max_hostile_score_difference']:.3f} (held-out accuracy of both: docs/models.md).",
        ]
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
