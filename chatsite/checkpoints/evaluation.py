"""The held-out evaluation a checkpoint must pass before it can be activated, plus a latency probe.

Emotion: the fixed test split of data/sentiment/ (macro-F1 overall and per language, hostile precision/recall).
Translation: sacreBLEU BLEU and chrF per pair on the held-out parallel set for that pair, when the project has one.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings

PROBE_TEXTS = ["hello there, how is it going?", "¿dónde está la estación?", "c'est génial !", "これは何ですか"]


def _latency_ms(run: Callable[[list[str]], Any], texts: Sequence[str], repeats: int = 5) -> dict[str, float]:
    run(list(texts))  # warm-up
    single, batch = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        run([texts[0]])
        single.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        run(list(texts))
        batch.append((time.perf_counter() - started) * 1000)
    return {
        "single_ms": round(statistics.median(single), 2),
        "batch_ms": round(statistics.median(batch), 2),
        "batch_size": len(texts),
    }


def evaluate_sentiment(model_dir: Path) -> dict[str, Any]:
    from sentiment.engine import SentimentEngine
    from sentiment.training.data import load_splits
    from sentiment.training.finetune import evaluate_engine, int8_summary

    test = load_splits(settings.BASE_DIR / "data" / "sentiment").test
    engine = SentimentEngine.from_directory(model_dir, device="cpu", batch_size=64)
    # The gate compares the trained weights (fp32); where CPU workers serve int8, its figures are reported beside.
    metrics = evaluate_engine(engine, test)
    if settings.BRIDGE_SENTIMENT_CPU_INT8:
        engine = engine.with_cpu_int8()
        metrics["int8"] = int8_summary(evaluate_engine(engine, test))
    metrics["latency"] = _latency_ms(engine.predict_batch, PROBE_TEXTS)  # of the precision served
    return metrics


def heldout_pairs_file(source: str, target: str) -> Path | None:
    path = settings.BASE_DIR / "data" / "translation" / f"heldout-{source}-{target}.tsv"
    return path if path.exists() else None


def evaluate_translation(model_dir: Path, pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    import sacrebleu

    from translation.engine.hf import Seq2SeqEngine
    from translation.training.common import read_records

    engine = Seq2SeqEngine.from_directory(model_dir, pairs=pairs, device="cpu")
    figures: dict[str, Any] = {}
    for source, target in pairs:
        heldout = heldout_pairs_file(source, target)
        if heldout is None:
            figures[f"{source}-{target}"] = {"note": "no held-out set for this pair in data/translation/"}
            continue
        records = read_records(heldout, required=("source", "target"))
        sources = [r.values["source"] for r in records]
        references = [r.values["target"] for r in records]
        outputs = engine.translate_batch(sources, source, target)
        figures[f"{source}-{target}"] = {
            "n": len(records),
            "bleu": round(sacrebleu.corpus_bleu(outputs, [references]).score, 2),
            "chrf": round(sacrebleu.corpus_chrf(outputs, [references]).score, 2),
        }
    source, target = pairs[0]
    return {"pairs": figures, "latency": _latency_ms(lambda t: engine.translate_batch(t, source, target), PROBE_TEXTS)}


def evaluate(kind: str, model_dir: Path, pairs: Sequence[tuple[str, str]], *, version: str) -> dict[str, Any]:
    if kind == "sentiment":
        return evaluate_sentiment(model_dir)
    return evaluate_translation(model_dir, pairs)
