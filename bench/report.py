"""The performance report: runs every benchmark in bench/, then writes bench/REPORT.md and PNG plots in bench/img/.

    python bench/report.py            # full runs (~10 min on the shared 2-core machine)
    python bench/report.py --short    # every benchmark's --short mode (a few minutes)
    python bench/report.py --no-run   # only rebuild REPORT.md and the plots from bench/out/*.json

Each benchmark runs as its own subprocess, one after the other (never two at once: they share the cores and
delivery/translation share a Redis database). A benchmark that fails is reported as failed with its output
tail; the others still run. Figures are read back from the JSON each benchmark writes to bench/out/.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
IMG = ROOT / "bench" / "img"
REPORT = ROOT / "bench" / "REPORT.md"


def benchmarks(short: bool) -> list[tuple[str, list[str], Path]]:
    """(name, command, the JSON it writes)."""
    flag = ["--short"] if short else []
    return [
        ("delivery", ["bench/bench_delivery.py", *flag], OUT / "delivery.json"),
        ("translation", ["bench/bench_translation.py", *flag], OUT / "translation.json"),
        ("engines", ["bench/bench_engines.py", *flag], OUT / f"engines{'-short' if short else ''}.json"),
        ("sentiment", ["bench/bench_sentiment.py", *flag], OUT / "sentiment.json"),
    ]


def run_all(short: bool, timeout: float) -> dict[str, dict]:
    status: dict[str, dict] = {}
    for name, command, _ in benchmarks(short):
        load = [round(value, 2) for value in os.getloadavg()]
        print(f"{time.strftime('%H:%M:%S')} {name}: {' '.join(command)} (load {load})", flush=True)
        started = time.monotonic()
        try:
            done = subprocess.run(
                [sys.executable, *command],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=timeout,
                env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
            )
            code, tail = done.returncode, (done.stdout + done.stderr)[-1500:]
        except subprocess.TimeoutExpired as exc:
            code, tail = -1, f"timed out after {timeout:.0f} s\n{str(exc.stdout or '')[-1000:]}"
        seconds = time.monotonic() - started
        status[name] = {"rc": code, "seconds": round(seconds, 1), "load_at_start": load, "tail": tail}
        print(f"  -> rc {code} in {seconds:.0f} s", flush=True)
    return status


def load_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def fmt(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


# Plots --------------------------------------------------------------------------------------------------------


def new_figure():
    import matplotlib

    matplotlib.use("Agg")  # no display; set before pyplot is imported
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 3.8), dpi=80)
    return plt, figure, axes


def save(plt, figure, name: str) -> str:
    IMG.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(IMG / name)
    plt.close(figure)
    return f"img/{name}"


def plot_delivery(data: dict) -> str:
    plt, figure, axes = new_figure()
    for target, style in (("product", "-o"), ("baseline", "--s")):
        runs = sorted((r for r in data["runs"] if r["target"] == target), key=lambda r: r["clients"])
        clients = [r["clients"] for r in runs]
        axes.plot(clients, [r["p50_ms"] for r in runs], style, label=f"{target} p50")
        axes.plot(clients, [r["p99_ms"] for r in runs], style, label=f"{target} p99", alpha=0.6)
    axes.axhline(50, color="grey", linewidth=0.8, linestyle=":", label="goal p99 50 ms")
    axes.set_yscale("log")
    axes.set_xlabel("clients in the room")
    axes.set_ylabel("delivery latency, ms (log)")
    axes.set_title(f"Original delivery at {data['parameters']['rate']:g} msg/s")
    axes.legend(fontsize=7)
    return save(plt, figure, "delivery.png")


def plot_translation(data: dict) -> str:
    plt, figure, axes = new_figure()
    for language, style in (("es", "-o"), ("fr", "--s")):
        runs = sorted((r for r in data["runs"] if r["language"] == language), key=lambda r: r["rate"])
        if not runs:
            continue
        rates = [r["rate"] for r in runs]
        axes.plot(rates, [r["p50_ms"] for r in runs], style, label=f"{runs[0]['route']} p50")
        axes.plot(rates, [r["p95_ms"] for r in runs], style, label=f"{runs[0]['route']} p95", alpha=0.6)
    axes.axhline(300, color="grey", linewidth=0.8, linestyle=":", label="goal p50 300 ms")
    axes.axhline(1000, color="black", linewidth=0.8, linestyle=":", label="goal p95 1 s")
    axes.set_yscale("log")
    axes.set_xlabel("messages per second")
    axes.set_ylabel("send -> message.translated, ms (log)")
    axes.set_title("End-to-end translation latency (Apertium)")
    axes.legend(fontsize=7)
    return save(plt, figure, "translation.png")


def plot_engines(data: dict) -> str:
    plt, figure, axes = new_figure()
    results = data["results"]
    sizes = sorted({run["batch_size"] for result in results for run in result["runs"]})
    width = 0.8 / max(1, len(results))
    for offset, result in enumerate(results):
        by_size = {run["batch_size"]: run["sentences_per_s"] for run in result["runs"]}
        xs = [index + offset * width for index in range(len(sizes))]
        axes.bar(xs, [by_size.get(size, 0) for size in sizes], width, label=result["engine"])
    axes.set_xticks([index + width * (len(results) - 1) / 2 for index in range(len(sizes))])
    axes.set_xticklabels([f"batch {size}" for size in sizes])
    axes.set_yscale("log")
    axes.set_ylabel("sentences / s (log)")
    axes.set_title(f"Engine throughput, {data.get('model_note', '')}"[:70])
    axes.legend(fontsize=7)
    return save(plt, figure, "engines.png")


def plot_sentiment(data: dict) -> str:
    plt, figure, axes = new_figure()

    def series(run: dict) -> str:
        return f"{run.get('device', 'cpu')} {run.get('precision', 'fp32')}, {run.get('torch_threads', '-')} thread(s)"

    runs = sorted(data["runs"], key=lambda r: r["batch_size"])
    for name in sorted({series(r) for r in runs}):
        mine = [r for r in runs if series(r) == name]
        axes.plot([r["batch_size"] for r in mine], [r["throughput_msgs_per_s"] for r in mine], "-o", label=name)
    axes.set_xscale("log", base=2)
    axes.set_xlabel("batch size")
    axes.set_ylabel("messages / s")
    axes.set_title("Sentiment (emotion) model throughput")
    axes.legend(fontsize=7)
    return save(plt, figure, "sentiment.png")


# Sections -----------------------------------------------------------------------------------------------------


def delivery_section(data: dict) -> list[str]:
    lines = [
        "| clients | product p50 ms | product p99 ms | baseline p50 ms | baseline p99 ms | p99 ratio | lost | "
        "product CPU s | /metrics: peak sockets | /metrics: messages |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    runs = {(r["target"], r["clients"]): r for r in data["runs"]}
    for clients in sorted({r["clients"] for r in data["runs"]}):
        product, baseline = runs.get(("product", clients)), runs.get(("baseline", clients))
        if not product or not baseline:
            continue
        ratio = product["p99_ms"] / baseline["p99_ms"] if baseline["p99_ms"] else float("nan")
        lines.append(
            f"| {clients} | {fmt(product['p50_ms'], 1)} | {fmt(product['p99_ms'], 1)} | "
            f"{fmt(baseline['p50_ms'], 1)} | {fmt(baseline['p99_ms'], 1)} | {fmt(ratio, 1)} | {product['lost']} | "
            f"{fmt(product['server_cpu_s'], 1)} | {fmt(product.get('metrics_peak_sockets'))} | "
            f"{fmt(product.get('metrics_messages'))} |"
        )
    return [
        f"{data['mode']} run, {data['date']}, load average (1/5/15) at start "
        f"{data['machine']['loadavg_1_5_15']}, {data['parameters']['rate']:g} msg/s in one room. "
        "Details: `reports/delivery.md` (full) and bench/README.md. The last two columns are the product's own "
        "`GET /metrics`, scraped every 2 s during the run (what a dashboard showed under this load).",
        "",
        *lines,
        "",
        *data.get("goals", []),
    ]


def translation_section(data: dict) -> list[str]:
    lines = [
        "| msg/s | route | p50 ms | p95 ms | p99 ms | max ms | ok | untranslated | failed | missing "
        "| worker CPU s (incl. Apertium) | worker RSS MB |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in data["runs"]:
        cpu = (r.get("worker_cpu_s") or 0) + (r.get("apertium_cpu_s") or 0)
        lines.append(
            f"| {r['rate']:g} | {r['route']} | {fmt(r['p50_ms'])} | {fmt(r['p95_ms'])} | {fmt(r['p99_ms'])} | "
            f"{fmt(r['max_ms'])} | {r['ok']} | {r['untranslated']} | {r['failed']} | {r['missing']} | "
            f"{fmt(cpu, 1)} | {fmt(r.get('worker_rss_mb'), 0)} |"
        )
    return [
        f"{data['mode']} run, {data['date']}; `uptime` at start: `{data['uptime_at_start']}`. "
        "Details: `reports/translation.md`.",
        "",
        *lines,
        "",
        *data.get("goals", []),
        *(
            [f"- Flower, watching the live worker during the run, counted: {data['flower_tasks']}."]
            if data.get("flower_tasks")
            else []
        ),
    ]


def engines_section(data: dict) -> list[str]:
    lines = [
        "| engine | batch | sentences/s | tokens/s | peak RSS MB | load s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for result in data["results"]:
        for run in result["runs"]:
            lines.append(
                f"| {result['engine']} | {run['batch_size']} | {fmt(run['sentences_per_s'], 1)} | "
                f"{fmt(run.get('tokens_per_s'), 0)} | {fmt(result.get('peak_rss_mb'), 0)} | "
                f"{fmt(result.get('load_seconds'), 1)} |"
            )
    speedups = [f"{name}: {value}x" for name, value in data.get("speedups", {}).items()]
    return [
        f"{data['mode']} run, {data['when']}, load average at start {data['load_average']}; model: "
        f"{data['model_note']}; {data['sentences']} sentences, {data['threads']} thread(s) per engine. Peak RSS "
        "is each engine's own child process with the model loaded (the memory a worker of that kind needs). "
        "Details: `reports/engines.md`.",
        "",
        *lines,
        "",
        "Speed-ups: " + "; ".join(speedups) + ".",
    ]


def sentiment_section(data: dict) -> list[str]:
    lines = [
        "| device | precision | torch threads | batch | messages/s | per-message p50 ms |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in data["runs"]:
        lines.append(
            f"| {r.get('device', 'cpu')} | {r.get('precision', 'fp32')} | {r.get('torch_threads', '-')} | "
            f"{r['batch_size']} | "
            f"{fmt(r['throughput_msgs_per_s'], 1)} | {fmt(r['per_message_p50_ms'], 1)} |"
        )
    if data.get("peak_rss_mb"):
        lines += [
            "",
            f"Peak RSS with the model loaded (torch + model, as a worker holds them): "
            f"{fmt(data['peak_rss_mb'], 0)} MB.",
        ]
    goal = data.get("goal", {})
    return [
        f"{'short' if data.get('short') else 'full'} run, load average (1 min) "
        f"{fmt(data['machine'].get('loadavg_1m'), 2)}; model `{data['model']}`, {data['messages']} messages. "
        "Details: `reports/sentiment.md`.",
        "",
        *lines,
        "",
        f"Goal (per-message p50 < {goal.get('per_message_p50_ms_at_batch8_one_thread')} ms at batch 8, one "
        f"thread, {goal.get('precision', 'fp32')} as served): measured {fmt(goal.get('measured'), 1)} ms, "
        f"{'MET' if goal.get('met') else 'NOT MET'}.",
        *_int8_agreement(data.get("int8_vs_fp32")),
    ]


def _int8_agreement(agreement: dict | None) -> list[str]:
    if not agreement:
        return []
    return [
        "",
        f"Opt-in int8 against fp32 on the same {agreement['messages']} messages: same emotion "
        f"{fmt(100 * agreement['same_emotion'], 1)} %, same hostile flag at 0.5 "
        f"{fmt(100 * agreement['same_flag_at_0_5'], 1)} % (held-out figures of both: docs/models.md).",
    ]


SECTIONS = {
    "delivery": ("Original-message delivery: product vs bare Channels baseline", delivery_section, plot_delivery),
    "translation": ("Translation latency vs message rate", translation_section, plot_translation),
    "engines": (
        "Translation engine throughput: transformers vs CTranslate2 vs Apertium",
        engines_section,
        plot_engines,
    ),
    "sentiment": ("Sentiment throughput by batch size", sentiment_section, plot_sentiment),
}


def write_report(short: bool, status: dict[str, dict]) -> None:
    load = [round(value, 2) for value in os.getloadavg()]
    lines = [
        "# Bridge performance report",
        "",
        f"Generated by `python bench/report.py{' --short' if short else ''}` on "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}.",
        "",
        f"**All figures come from a shared 2-core machine ({os.cpu_count()} CPUs, no GPU) on which other jobs "
        "(model training, test suites) were running.** Each section states the load average when its benchmark "
        f"started; load average when this report was written: {load}. Latency tails move a lot with that load; "
        "read the figures as this machine's, not as the product's ceiling.",
        "",
    ]
    if (ROOT / "bench" / "reports" / "gpu.md").is_file():
        lines += [
            "GPU figures (recorded on a lent GPU by `bench/bench_gpu.py`, not remade here): "
            "[reports/gpu.md](reports/gpu.md).",
            "",
        ]
    if (ROOT / "bench" / "reports" / "training.md").is_file():
        lines += [
            "Emotion fine-tuning throughput by layout (one run on every core, runs side by side, a busy neighbour; "
            "`bench/bench_training.py`, not remade here): [reports/training.md](reports/training.md).",
            "",
        ]
    if status:
        lines += ["| benchmark | exit | seconds | load at start (1/5/15) |", "|---|---:|---:|---|"]
        lines += [f"| {n} | {s['rc']} | {s['seconds']} | {s['load_at_start']} |" for n, s in status.items()]
        lines.append("")
    for name, _, path in benchmarks(short):
        title, section, plot = SECTIONS[name]
        lines += [f"## {title}", ""]
        if name in status and status[name]["rc"] != 0:
            lines += [f"**This run failed** (exit {status[name]['rc']}); output tail:", "", "```"]
            lines += [status[name]["tail"].rstrip(), "```", ""]
            lines += ["Figures below, if any, are from an earlier run's JSON.", ""]
        data = load_json(path)
        if data is None:
            lines += [f"No figures: `{path.relative_to(ROOT)}` is missing.", ""]
            continue
        try:
            image = plot(data)
            lines += [*section(data), "", f"![{name}]({image})", ""]
        except (KeyError, TypeError, ValueError) as exc:  # a benchmark's JSON changed shape: say so, go on
            lines += [f"Could not read `{path.relative_to(ROOT)}`: {exc!r}.", ""]
    REPORT.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {REPORT} and plots in {IMG}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="each benchmark's --short mode")
    parser.add_argument("--no-run", action="store_true", help="only rebuild the report from bench/out/*.json")
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed per benchmark")
    options = parser.parse_args(argv)
    status = {} if options.no_run else run_all(options.short, options.timeout)
    write_report(options.short, status)
    return 1 if any(s["rc"] != 0 for s in status.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
