"""Held-out figures of a built emotion checkpoint, and the lexicon baseline (VADER) on the English test rows.

    python -m sentiment.training.report MODEL_DIR [DATA_DIR]
    python -m sentiment.training.report --agreement [DATA_DIR]

print the Markdown tables that docs/models.md quotes (and the probes of DATA_DIR/probes/ the model gets
wrong); the second compares the held-out labels with a second annotator's blind labels of the same rows
(data/sentiment/agreement/).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from sentiment.engine.labels import EMOTIONS, POLARITIES, POLARITY_OF

from .data import load_probes, load_splits, read_sentiment_records, to_example

# VADER's own recommended cut-offs on the compound score.
VADER_POSITIVE = 0.05
VADER_NEGATIVE = -0.05


def vader_polarity(compound: float) -> str:
    if compound >= VADER_POSITIVE:
        return "positive"
    if compound <= VADER_NEGATIVE:
        return "negative"
    return "neutral"


def compare_with_vader(
    model_dir: str | os.PathLike[str], data: str | os.PathLike[str], language: str = "en"
) -> dict[str, Any]:
    """Polarity accuracy and macro-F1 of the checkpoint and of VADER on the held-out rows of ``language``.

    Gold polarity comes from the gold emotion (joy positive; anger, disgust, fear, sadness negative; neutral
    and surprise neutral), the same mapping the engine uses.
    """
    from sklearn.metrics import accuracy_score, f1_score
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from sentiment.engine import SentimentEngine

    rows = [e for e in load_splits(data).test if e.language == language]
    if not rows:
        raise ValueError(f"no held-out rows in language {language!r}")
    gold = [POLARITY_OF[e.emotion] for e in rows]
    analyzer = SentimentIntensityAnalyzer()
    vader = [vader_polarity(analyzer.polarity_scores(e.text)["compound"]) for e in rows]
    engine = SentimentEngine.from_directory(model_dir, device="cpu")
    ours = [p.polarity for p in engine.predict_batch([e.text for e in rows])]

    def figures(predicted: list[str]) -> dict[str, float]:
        return {
            "polarity_accuracy": float(accuracy_score(gold, predicted)),
            "polarity_macro_f1": float(f1_score(gold, predicted, labels=list(POLARITIES), average="macro")),
        }

    return {"language": language, "n": len(rows), "model": figures(ours), "vader": figures(vader)}


def annotator_agreement(data: str | os.PathLike[str], second: str | os.PathLike[str]) -> dict[str, Any]:
    """Agreement between the held-out labels of ``data`` and a second annotator's labels of the same rows.

    Raw agreement and Cohen's kappa, per language and pooled, for the emotion and for the hostile flag, and the
    emotion pairs the two disagree on. The second file must label every held-out row once, matched by
    language and text.
    """
    from collections import Counter

    from sklearn.metrics import cohen_kappa_score

    gold = {(e.language, e.text): e for e in load_splits(data).test}
    second_labels = {}
    for record in read_sentiment_records(second):
        example = to_example(record)
        key = (example.language, example.text)
        if key not in gold:
            raise ValueError(f"{example.source}: not a held-out row of {data}: {example.text!r}")
        if key in second_labels:
            raise ValueError(f"{example.source}: row labelled twice: {example.text!r}")
        second_labels[key] = example
    missing = [text for (language, text) in gold if (language, text) not in second_labels]
    if missing:
        raise ValueError(f"{len(missing)} held-out rows have no second label, e.g. {missing[0]!r}")

    def figures(keys: list[tuple[str | None, str]]) -> dict[str, Any]:
        first = [gold[k] for k in keys]
        other = [second_labels[k] for k in keys]
        emotions_a, emotions_b = [e.emotion for e in first], [e.emotion for e in other]
        hostile_a, hostile_b = [e.hostile for e in first], [e.hostile for e in other]
        return {
            "n": len(keys),
            "emotion_agreement": sum(a == b for a, b in zip(emotions_a, emotions_b, strict=True)) / len(keys),
            "emotion_kappa": float(cohen_kappa_score(emotions_a, emotions_b)),
            "hostile_agreement": sum(a == b for a, b in zip(hostile_a, hostile_b, strict=True)) / len(keys),
            "hostile_kappa": float(cohen_kappa_score(hostile_a, hostile_b)),
        }

    languages = sorted({language for language, _ in gold if language})
    disagreements = Counter(
        " / ".join(sorted((gold[k].emotion, second_labels[k].emotion)))
        for k in gold
        if gold[k].emotion != second_labels[k].emotion
    )
    return {
        "all": figures(list(gold)),
        "per_language": {lang: figures([k for k in gold if k[0] == lang]) for lang in languages},
        "emotion_disagreements": dict(disagreements.most_common()),
    }


def agreement_table(agreement: dict[str, Any]) -> str:
    lines = [
        "| language | rows | emotion agreement | emotion kappa | hostile agreement | hostile kappa |",
        "|---|---|---|---|---|---|",
    ]
    for name, fig in [*agreement["per_language"].items(), ("**all**", agreement["all"])]:
        lines.append(
            f"| {name} | {fig['n']} | {fig['emotion_agreement']:.3f} | {fig['emotion_kappa']:.3f} "
            f"| {fig['hostile_agreement']:.3f} | {fig['hostile_kappa']:.3f} |"
        )
    pairs = ", ".join(f"{pair} {count}" for pair, count in agreement["emotion_disagreements"].items()) or "none"
    return "\n".join([*lines, "", f"Emotion disagreements: {pairs}."]) + "\n"


def markdown_tables(metrics: dict[str, Any], vader: dict[str, Any] | None = None) -> str:
    test = metrics["test"]
    lines = [
        f"Test split: {test['n']} rows. Accuracy {test['accuracy']:.3f}, macro-F1 (7 emotions) "
        f"{test['macro_f1']:.3f}, polarity accuracy {test['polarity_accuracy']:.3f}; hostile flag at "
        f"{test['hostile_threshold']}: precision {test['hostile_precision']:.3f}, recall {test['hostile_recall']:.3f} "
        f"({test['hostile_support']} hostile rows"
        + (
            f", average precision {test['hostile_average_precision']:.3f})"
            if "hostile_average_precision" in test
            else ")"
        ),
        "",
    ]
    int8 = metrics.get("test_int8")
    if int8:
        lines += [
            f"In int8 on a CPU worker (opt-in, BRIDGE_SENTIMENT_CPU_INT8=1): accuracy {int8['accuracy']:.3f}, "
            f"macro-F1 {int8['macro_f1']:.3f}, hostile precision {int8['hostile_precision']:.3f}, recall "
            f"{int8['hostile_recall']:.3f}; macro-F1 per language "
            + ", ".join(f"{lang} {value:.3f}" for lang, value in int8["per_language_macro_f1"].items())
            + ".",
            "",
        ]
    lines += [
        "| language | rows | accuracy | macro-F1 | hostile rows | hostile P | hostile R |",
        "|---|---|---|---|---|---|---|",
    ]
    for language, fig in test["per_language"].items():
        lines.append(
            f"| {language} | {fig['n']} | {fig['accuracy']:.3f} | {fig['macro_f1']:.3f} | {fig['hostile_support']} "
            f"| {fig['hostile_precision']:.3f} | {fig['hostile_recall']:.3f} |"
        )
    lines += ["", "| emotion | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for emotion in EMOTIONS:
        row = test["per_class"][emotion]
        lines.append(
            f"| {emotion} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1-score']:.3f} "
            f"| {row['support']:.0f} |"
        )
    if vader:
        lines += [
            "",
            f"Polarity on the {vader['n']} English held-out rows:",
            "",
            "| system | polarity accuracy | polarity macro-F1 |",
            "|---|---|---|",
            f"| Bridge emotion model | {vader['model']['polarity_accuracy']:.3f} | "
            f"{vader['model']['polarity_macro_f1']:.3f} |",
            f"| VADER (compound, ±0.05) | {vader['vader']['polarity_accuracy']:.3f} | "
            f"{vader['vader']['polarity_macro_f1']:.3f} |",
        ]
    return "\n".join(lines) + "\n"


def probe_lines(report: dict[str, Any]) -> str:
    """The probe report of :func:`~.finetune.probe_misses` in Markdown: build log, model card, docs/models.md."""
    lines = [
        f"Probes: {report['wrong']} of {report['n']} flagged wrongly at "
        f"{report['hostile_threshold']}" + (":" if report["misses"] else ".")
    ]
    lines += [
        f"- {miss['language']} {miss['text']!r}: hostile {miss['hostile_score']:.3f} (read as {miss['emotion']}), "
        + ("should be flagged" if miss["hostile"] else "should not be")
        for miss in report["misses"]
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        raise SystemExit(__doc__)
    data = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[2] / "data" / "sentiment"
    if argv[0] == "--agreement":
        print(agreement_table(annotator_agreement(data, data / "agreement" / "test.second_annotator.tsv")))
        return
    model_dir = Path(argv[0])
    metrics = json.loads((model_dir / "metrics.json").read_text(encoding="utf-8"))
    vader = compare_with_vader(model_dir, data)
    print(markdown_tables(metrics, vader))
    probes = load_probes(data)
    if probes:
        # Scored now rather than read from metrics.json: a model built before a probe was written is still
        # checked against it.
        from sentiment.engine import SentimentEngine

        from .finetune import probe_misses

        engine = SentimentEngine.from_directory(model_dir, device="cpu")
        print(probe_lines(probe_misses(engine, probes, hostile_threshold=metrics["test"]["hostile_threshold"])))
    print(json.dumps(vader, indent=2))


if __name__ == "__main__":
    main()
