"""Translation engine benchmark: same checkpoint through transformers and CTranslate2, batch 1 vs batched,
Apertium one process per batch (`apertium`, the script started per call) vs its stages kept running
(`apertium-stream`, the product's default).

    python bench/bench_engines.py            # trains (once) a tiny en->es model into bench/out/, ~3-5 min
    python bench/bench_engines.py --short    # < 60 s: an untrained tiny model unless a trained one is cached
    python bench/bench_engines.py --model DIR --device cuda

Each engine runs in its own child process so its peak RSS is its own. Prints a table; writes
bench/out/engines.json and bench/reports/engines.md (--short: engines-short.json / engines-short.md; --device
cuda: engines-cuda.*).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

OUT_DIR = ROOT / "bench" / "out"
REPORT = ROOT / "bench" / "reports" / "engines.md"
CACHED_MODEL = OUT_DIR / "tiny-en-es"


def sentences(count: int) -> list[str]:
    from translation.training.synthetic import generate_pairs

    return [source for source, _ in generate_pairs(count, seed=99)][:count]


def prepare_model(short: bool, threads: int) -> tuple[Path, str]:
    """A tiny en->es checkpoint: the cached trained one, else (full) train it, else (short) an untrained one."""
    if (CACHED_MODEL / "model.safetensors").is_file():
        return CACHED_MODEL, "tiny Marian, trained by bench (cached)"
    if short:
        from translation.training.common import atomic_output_dir
        from translation.training.synthetic import generate_pairs
        from translation.training.tiny import build_tiny_model, build_tiny_tokenizer

        target = OUT_DIR / "tiny-en-es-untrained"
        if not (target / "model.safetensors").is_file():
            pairs = generate_pairs(2000)
            tokenizer = build_tiny_tokenizer([s for s, _ in pairs] + [t for _, t in pairs], 1000)
            model = build_tiny_model(tokenizer)
            with atomic_output_dir(target, overwrite=True) as temp:
                model.save_pretrained(temp)
                tokenizer.save_pretrained(temp)
        return target, "tiny Marian, UNTRAINED (short mode; outputs run to the length cap)"
    from translation.training.finetune import TranslationTrainingConfig, finetune_translation

    data = ROOT / "data" / "translation" / "chat-en-es.tsv"
    finetune_translation(
        TranslationTrainingConfig(
            data=data,
            out=CACHED_MODEL,
            source="en",
            target="es",
            init="tiny",
            max_steps=400,
            eval_steps=200,
            lr=3e-3,
            dropout=0.0,
            warmup=0.05,
            max_eval_samples=100,
            overwrite=True,
            threads=threads,
        )
    )
    return CACHED_MODEL, "tiny Marian, trained by bench (400 steps)"


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM resets at exec, unlike ru_maxrss which a child inherits)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_worker(engine: str, model: str, device: str, texts: list[str], batch_sizes: list[int], threads: int) -> dict:
    """Child process body: load one engine, time each batch size, report figures and peak RSS."""
    started = time.perf_counter()
    if engine == "transformers":
        import torch

        from translation.engine.hf import Seq2SeqEngine

        torch.set_num_threads(threads)

        loaded = Seq2SeqEngine.from_directory(model, pairs={("en", "es")}, device=device)
    elif engine == "ctranslate2":
        from translation.engine.ct2 import CTranslate2Engine

        loaded = CTranslate2Engine.from_directory(model, pairs={("en", "es")}, device=device, intra_threads=threads)
    else:
        from translation.engine.apertium import ApertiumEngine

        persistent = engine == "apertium-stream"
        loaded = next(e for e in ApertiumEngine.discover(persistent=persistent) if e.pairs() == {("en", "es")})
    load_seconds = time.perf_counter() - started
    tokenizer = getattr(loaded, "tokenizer", None)

    def count_tokens(outputs: list[str]) -> int:
        if tokenizer is None:
            return sum(len(text.split()) for text in outputs)
        return sum(len(ids) for ids in tokenizer(text_target=outputs)["input_ids"])

    loaded.translate_batch(texts[:2], "en", "es")  # warm-up: lazy allocations, first-call costs
    results = []
    for batch_size in batch_sizes:
        outputs: list[str] = []
        start = time.perf_counter()
        for offset in range(0, len(texts), batch_size):
            outputs += loaded.translate_batch(texts[offset : offset + batch_size], "en", "es")
        seconds = time.perf_counter() - start
        tokens = count_tokens(outputs)
        results.append(
            {
                "batch_size": batch_size,
                "sentences": len(texts),
                "seconds": round(seconds, 3),
                "sentences_per_s": round(len(texts) / seconds, 1),
                "tokens_per_s": round(tokens / seconds, 1),
                "output_tokens": tokens,
                "sample": outputs[:2],
            }
        )
    stage_pids = loaded.stage_pids() if hasattr(loaded, "stage_pids") else []
    return {
        "engine": engine,
        "label": f"{loaded.name}@{loaded.version}",
        "load_seconds": round(load_seconds, 2),
        # The running Apertium stages are processes of their own: their memory counts for the worker too.
        "peak_rss_mb": round(peak_rss_mb() + sum(rss_kib(pid) for pid in stage_pids) / 1024, 1),
        "runs": results,
    }


def spawn(engine: str, model: Path, device: str, count: int, batch_sizes: list[int], threads: int) -> dict:
    command = [
        sys.executable,
        __file__,
        "--worker",
        engine,
        "--model",
        str(model),
        "--device",
        device,
        "--sentences",
        str(count),
        "--batch-sizes",
        ",".join(map(str, batch_sizes)),
        "--threads",
        str(threads),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    completed = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if completed.returncode != 0:
        raise RuntimeError(f"{engine} worker failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def speedups(results: list[dict]) -> dict:
    by_engine = {item["engine"]: {run["batch_size"]: run for run in item["runs"]} for item in results}
    figures = {}
    for engine, runs in by_engine.items():
        one = runs.get(1)
        for size, run in runs.items():
            if one and size != 1:
                figures[f"{engine} batch {size} vs batch 1"] = round(run["sentences_per_s"] / one["sentences_per_s"], 2)
    oneshot, stream = by_engine.get("apertium"), by_engine.get("apertium-stream")
    if oneshot and stream:
        for size in sorted(set(oneshot) & set(stream)):
            figures[f"apertium-stream vs apertium, batch {size}"] = round(
                stream[size]["sentences_per_s"] / oneshot[size]["sentences_per_s"], 2
            )
    hf, ct2 = by_engine.get("transformers"), by_engine.get("ctranslate2")
    if hf and ct2:
        for size in sorted(set(hf) & set(ct2)):
            figures[f"ctranslate2 vs transformers, batch {size}"] = round(
                ct2[size]["tokens_per_s"] / hf[size]["tokens_per_s"], 2
            )
    return figures


def write_report(payload: dict, report: Path) -> None:
    lines = [
        "# Translation engine benchmark",
        "",
        f"Run: {payload['when']} on {payload['machine']} ({payload['cpus']} CPUs, load average at start "
        f"{payload['load_average']}), device `{payload['device']}`, {payload['threads']} thread(s) per engine, "
        f"mode `{payload['mode']}`.",
        f"Model: {payload['model_note']} (`{payload['model']}`). Sentences: {payload['sentences']} short chat lines.",
        "Greedy decoding (beam 1) on both neural engines; CTranslate2 int8 on CPU, float16 on CUDA.",
        "",
        "| engine | batch | sentences/s | output tokens/s | seconds | peak RSS (MB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for item in payload["results"]:
        for run in item["runs"]:
            lines.append(
                f"| {item['engine']} | {run['batch_size']} | {run['sentences_per_s']} | {run['tokens_per_s']} "
                f"| {run['seconds']} | {item['peak_rss_mb']} |"
            )
    lines += ["", "## Ratios", ""] + [f"- {name}: **{value}x**" for name, value in payload["speedups"].items()]
    lines += [
        "",
        "Apertium tokens are output words. Figures on a shared machine move with its load; compare rows of one",
        "run, not runs of different days.",
    ]
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="CI mode: fewer sentences, no training (< 60 s)")
    parser.add_argument("--model", help="HF checkpoint directory (default: a tiny en->es model)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sentences", type=int, default=None)
    parser.add_argument("--batch-sizes", default=None, help="comma-separated (default 1,8,32)")
    parser.add_argument("--engines", default="transformers,ctranslate2,apertium,apertium-stream")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per engine (1: stable on a shared box)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    options = parser.parse_args()
    batch_sizes = [int(size) for size in (options.batch_sizes or "1,8,32").split(",")]
    count = options.sentences or (16 if options.short else 256)
    if options.short and not options.batch_sizes:
        batch_sizes = [1, 8]
    if options.worker:
        texts = sentences(count)
        print(
            json.dumps(run_worker(options.worker, options.model, options.device, texts, batch_sizes, options.threads))
        )
        return

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    load_at_start = [round(value, 2) for value in os.getloadavg()]
    if options.model:
        model, note = Path(options.model), "given checkpoint"
    else:
        model, note = prepare_model(options.short, options.threads)
    engines = options.engines.split(",")
    if shutil.which("apertium") is None:
        engines = [engine for engine in engines if not engine.startswith("apertium")]
    results = []
    for engine in engines:
        result = spawn(engine, model, options.device, count, batch_sizes, options.threads)
        results.append(result)
        for run in result["runs"]:
            print(
                f"{engine:>12} batch {run['batch_size']:>3}: {run['sentences_per_s']:>8} sent/s "
                f"{run['tokens_per_s']:>9} tok/s  peak RSS {result['peak_rss_mb']} MB"
            )
    payload = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": load_at_start,
        "device": options.device,
        "threads": options.threads,
        "mode": "short" if options.short else "full",
        "model": str(model.relative_to(ROOT) if model.is_relative_to(ROOT) else model),
        "model_note": note,
        "sentences": count,
        "results": results,
        "speedups": speedups(results),
    }
    for name, value in payload["speedups"].items():
        print(f"{name}: {value}x")
    # --short (CI) writes its own files so it never overwrites the full run's committed report.
    # A CUDA run too: the committed CPU report is what bench/report.py rebuilds on the CPU machine.
    suffix = ("-short" if options.short else "") + ("-cuda" if options.device.startswith("cuda") else "")
    figures = OUT_DIR / f"engines{suffix}.json"
    report = REPORT.with_name(f"engines{suffix}.md")
    figures.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    write_report(payload, report)
    print(f"wrote {figures} and {report}")


if __name__ == "__main__":
    main()
