"""Emotion fine-tuning throughput on this machine's cores, in the layouts a soup build can use.

    python bench/bench_training.py [--base DIR] [--steps N] [--short]

Each layout trains the default recipe's step (batch 32, max length 64, embeddings frozen, AdamW, real chat rows
from data/sentiment/) in fresh spawned processes and times the same number of steps after a warm-up:

- one run on every core's thread (how a single build trains on an idle machine; the baseline),
- one run on one thread,
- one run per core side by side, one thread each (how ``--member-processes`` trains a soup's members),
- one run on every core's thread beside a busy process (a core taken by something else).

Every figure is a ratio to the baseline measured minutes apart on the same machine: absolute step times on these
shared machines are noise. Prints a table, writes bench/out/training.json and bench/reports/training.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import queue
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BATCH_SIZE = 32
MAX_LENGTH = 64
_BARRIER_SECONDS = 900


def default_base() -> Path:
    return Path(os.environ.get("BRIDGE_MODEL_ROOT") or ROOT / "var" / "models") / "sentiment" / "multilingual-e5-small"


def _train_steps(base: str, threads: int, warmup: int, steps: int, start: object, seed: int) -> dict:
    """One process: ``warmup`` untimed steps, wait for the others (``start``), then ``steps`` timed steps."""
    import torch
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from sentiment.training.data import read_sentiment_records

    transformers.logging.set_verbosity_error()  # the new head's "newly initialized" notice, once per process
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        base, local_files_only=True, use_safetensors=True, num_labels=9, ignore_mismatched_sizes=True
    )
    for parameter in model.base_model.embeddings.parameters():  # the recipe's freeze="embeddings"
        parameter.requires_grad = False
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.01)
    texts = [r["text"] for r in read_sentiment_records(ROOT / "data" / "sentiment") if r.split != "test"]
    generator = torch.Generator().manual_seed(seed)
    model.train()

    def step() -> None:
        picks = torch.randint(len(texts), (BATCH_SIZE,), generator=generator).tolist()
        batch = tokenizer([texts[i] for i in picks], truncation=True, max_length=MAX_LENGTH, padding=True,
                          return_tensors="pt")  # fmt: skip
        labels = torch.randint(model.config.num_labels, (BATCH_SIZE,), generator=generator)
        loss = model(**batch, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()

    for _ in range(warmup):
        step()
    start.wait(timeout=_BARRIER_SECONDS)  # a run that died before it would leave the others waiting
    began = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - began
    return {"threads": threads, "steps": steps, "seconds": round(seconds, 3), "steps_per_s": steps / seconds}


def _spin(stop: object) -> None:
    """A busy neighbour: pure Python arithmetic on one core until told to stop."""
    from sentiment.training.parallel import exit_with_parent

    exit_with_parent()
    value = 0
    while not stop.is_set():
        for i in range(100_000):
            value ^= i


def _member(base: str, threads: int, warmup: int, steps: int, start: object, run: int, results: object) -> None:
    from sentiment.training.parallel import exit_with_parent

    exit_with_parent()
    try:
        results.put({"run": run, **_train_steps(base, threads, warmup, steps, start, seed=100 + run)})
    except Exception as error:  # noqa: BLE001 (reported by the parent, which would otherwise wait forever)
        start.abort()  # the other runs stop waiting at the barrier
        results.put({"run": run, "error": f"{type(error).__name__}: {error}"})


def run_layout(name: str, base: Path, runs: int, threads: int, warmup: int, steps: int, busy: bool = False) -> dict:
    context = multiprocessing.get_context("spawn")  # fresh interpreters: no thread pools inherited
    start, stop, results = context.Barrier(runs), context.Event(), context.Queue()
    workers = [
        context.Process(target=_member, args=(str(base), threads, warmup, steps, start, index, results))
        for index in range(runs)
    ]
    if busy:
        workers.append(context.Process(target=_spin, args=(stop,), daemon=True))
    for worker in workers:
        worker.start()
    try:
        members = _collect(results, workers[:runs], name)
        failed = [m["error"] for m in members if "error" in m]
        if failed:
            raise RuntimeError(f"{name}: a run failed: {failed[0]}")
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.terminate()
    total = sum(m["steps_per_s"] for m in members)
    print(f"{name}: {runs} run(s) x {threads} thread(s): {total:.3f} steps/s in all", flush=True)
    return {"layout": name, "runs": runs, "threads_each": threads, "busy_neighbour": busy, "members": members,
            "total_steps_per_s": total}  # fmt: skip


def _collect(results: Any, workers: list, name: str) -> list[dict]:
    """One result per worker, in run order; a worker gone without one (killed, out of memory) fails the layout."""
    members: dict[int, dict] = {}
    gone_before: set[int] = set()
    while len(members) < len(workers):
        try:
            result = results.get(timeout=1.0)
            members[result["run"]] = result
            continue
        except queue.Empty:
            pass
        # Gone at two polls a second apart with nothing read in between: its last words would have arrived.
        gone = {run for run, worker in enumerate(workers) if not worker.is_alive() and run not in members}
        if gone & gone_before:
            raise RuntimeError(f"{name}: run {min(gone & gone_before)}'s process ended without a result")
        gone_before = gone
    return [members[run] for run in sorted(members)]


def measure(base: Path, steps: int, warmup: int, cores: int) -> list[dict]:
    return [
        run_layout("one run, every core", base, 1, cores, warmup, steps),
        run_layout("one run, one thread", base, 1, 1, warmup, steps),
        run_layout("runs side by side", base, cores, 1, warmup, steps),
        run_layout("one run, every core, busy neighbour", base, 1, cores, warmup, steps, busy=True),
    ]


def summarise(layouts: list[dict], cores: int) -> dict:
    """Ratios to the baseline, and what they mean for a soup with one member per core."""
    baseline = layouts[0]["total_steps_per_s"]
    for layout in layouts:
        layout["ratio_to_baseline"] = layout["total_steps_per_s"] / baseline
    side_by_side = next(layout for layout in layouts if layout["layout"] == "runs side by side")
    # A soup of `cores` members: one after the other on every core, or all at once one thread each.
    return {
        "soup_members": cores,
        "soup_time_side_by_side_over_one_after_the_other": baseline / side_by_side["total_steps_per_s"],
    }


def render(report: dict) -> str:
    lines = [
        "# Emotion fine-tuning: throughput by layout",
        "",
        f"Machine: {report['machine']}, {report['cores']} cores; base `{report['base']}`; {report['steps']} timed "
        f"steps per run after {report['warmup']} warm-up steps; batch {BATCH_SIZE}, max length {MAX_LENGTH}, "
        f"embeddings frozen, rows drawn at random (the default recipe's step, without its length-grouped "
        f"batches). Written by `bench/bench_training.py`"
        f"{' --short' if report['short'] else ''} on {report['date']}.",
        "",
        "| layout | runs x threads | steps/s per run | steps/s in all | ratio to one run on every core |",
        "|---|---|---|---|---|",
    ]
    for layout in report["layouts"]:
        per_run = " / ".join(f"{m['steps_per_s']:.3f}" for m in layout["members"])
        lines.append(
            f"| {layout['layout']} | {layout['runs']} x {layout['threads_each']} | {per_run} | "
            f"{layout['total_steps_per_s']:.3f} | {layout['ratio_to_baseline']:.2f} |"
        )
    soup = report["soup"]
    lines += [
        "",
        f"A soup of {soup['soup_members']} members trained side by side takes "
        f"**{soup['soup_time_side_by_side_over_one_after_the_other']:.2f}x** the time of training them one after "
        "the other on every core (below 1: side by side is faster).",
        "",
    ]
    return "\n".join(lines)


def _shown(path: Path) -> str:
    """The path relative to the checkout when it is inside it (reports are committed)."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, default=default_base(), help="checkpoint to train (default: e5 import)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--cores",
        type=int,
        default=min(4, len(os.sched_getaffinity(0))),
        help="threads of the baseline and runs side by side (default: the cores this process may use, at most 4)",
    )
    parser.add_argument("--short", action="store_true", help="3 timed steps per run (CI)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench", help="writes out/ and reports/ under it")
    options = parser.parse_args(argv)
    if not (options.base / "config.json").is_file():
        parser.error(f"{options.base}: no checkpoint there (run `manage.py build_models` first, or pass --base)")
    steps, warmup = (3, 1) if options.short else (options.steps, options.warmup)
    cores = options.cores
    layouts = measure(options.base, steps, warmup, cores)
    report = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cores": cores,
        "base": _shown(options.base),
        "steps": steps,
        "warmup": warmup,
        "short": options.short,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_after": [round(value, 2) for value in os.getloadavg()],
        "layouts": layouts,
    }
    report["soup"] = summarise(layouts, cores)
    out, reports = options.out / "out", options.out / "reports"
    out.mkdir(parents=True, exist_ok=True)
    reports.mkdir(parents=True, exist_ok=True)
    (out / "training.json").write_text(json.dumps(report, indent=2))
    text = render(report)
    (reports / f"training{'-short' if options.short else ''}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
