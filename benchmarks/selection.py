"""Issue 9's recipe selection table: each candidate run's validation scores, with and without shift TTA.

Candidates are whole runs trained with the package's command (`python -m kmnist train --config FILE`), each in
a runs dir of its own choosing. For every run given this reads its config and metrics, re-scores its own
validation split (carved by its seed, as training did) once plainly and once with shift TTA, and writes the
rows to benchmarks/selection.json with a markdown table for BENCHMARKS.md. Test accuracy is printed too, in
the last column: it is what the run reported, read after the choice, never used to make it.

    python benchmarks/selection.py RUN_DIR [RUN_DIR ...] [--out benchmarks/selection.json]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kmnist import datasets, files, runs  # noqa: E402
from kmnist.evaluate import validation_scores  # noqa: E402
from kmnist.predict import predict_proba  # noqa: E402
from kmnist.train import split_train_val  # noqa: E402


def candidate(path: Path) -> dict:
    """One run's selection row: recipe fields, validation scores plain and with TTA, time, test accuracy."""
    run = runs.Run(path.name, path)
    config, metrics, history = run.config, run.metrics, run.history
    data = datasets.load(config.dataset)
    labels = data.train.labels[: config.limit] if config.limit else data.train.labels
    _, val = split_train_val(labels, config.val_fraction, config.seed)
    model = run.load_model()
    scores = {}
    for tta in (False, True):
        probs = predict_proba(model, data.train.images[val], tta=tta)
        scores["tta" if tta else "plain"] = validation_scores(probs, data.train.labels[val], config.label_smoothing)
    best = int(np.argmin(history["val_loss"]))
    return {"run": run.id, "arch": config.arch, "epochs": config.epochs, "seed": config.seed,
            "cutmix": config.cutmix, "params": metrics["params"], "val_images": int(len(val)),
            "val": scores["plain"], "val_tta": scores["tta"],
            "best_epoch_val_loss": float(history["val_loss"][best]), "best_epoch": best + 1,
            "train_seconds": metrics["train_seconds"], "test_accuracy": metrics["accuracy"]}


def markdown(rows: list[dict]) -> str:
    lines = ["| run | arch | epochs | seed | CutMix | val acc | val loss | val acc, TTA | val loss, TTA "
             "| lowest epoch val loss | train time | test acc (reported only) |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(
            f"| `{r['run']}` | `{r['arch']}` | {r['epochs']} | {r['seed']} | {r['cutmix']:g} "
            f"| {r['val']['val_accuracy']:.4f} | {r['val']['val_loss']:.4f} | {r['val_tta']['val_accuracy']:.4f} "
            f"| {r['val_tta']['val_loss']:.4f} | {r['best_epoch_val_loss']:.4f} (epoch {r['best_epoch']}) "
            f"| {r['train_seconds']:.0f} s | {r['test_accuracy']:.4f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="candidate run directories")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "selection.json")
    args = parser.parse_args(argv)
    rows = [candidate(p) for p in args.runs]
    files.write_json(args.out, {"candidates": rows})
    print(markdown(rows), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
