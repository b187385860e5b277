"""Issue 18's "none of these": which score tells unknown characters apart, and how the shipped rule does.

For each run given (default: the shipped default) this compares candidate scores on team-made data only: the
run's validation split sets each score's threshold (keeping `unknown.KEEP` of it), and the scores are judged on
held-out team data: print renders in fonts the head never saw (half the fonts fit the head, the other half judge),
MNIST digits and scribbles from other halves/seeds, print renders of the known characters (false alarms), and
validation images redrawn as canvas strokes (false alarms on drawings). The real K49 images of other characters in
`k49-partial` (72, labels outside the run's classes) are REPORTED for every score and for the run's shipped rule
(fitted on all the team data by `unknown.calibrate`), never used to choose; so are the k49-partial images of the
run's own characters (real handwriting, other writers).

    python benchmarks/unknown.py [--run ID ...] [--fonts 32] [--out benchmarks/unknown.json]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kmnist import classes as cls, datasets, files, runs, unknown  # noqa: E402
from kmnist.preprocess import prepare  # noqa: E402
from tests import sketch  # noqa: E402  (pen strokes from an image, as the browser tests draw)

DRAWN = 200  # validation images redrawn as canvas strokes


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score
    return float(roc_auc_score(np.r_[np.zeros(len(inside)), np.ones(len(outside))], np.r_[inside, outside]))


def k49_partial(run: runs.Run, root: Path) -> tuple[np.ndarray, np.ndarray]:
    """k49-partial's images of characters the run does not know, and of those it knows."""
    folder = root / "k49-partial"
    images = np.load(folder / "k49-test-subset-imgs.npz")["arr_0"]
    labels = np.load(folder / "k49-test-subset-labels.npz")["arr_0"]
    known = {c.char for c in run.classes}
    inside = np.array([cls.k49_classes()[y].char in known for y in labels])
    return images[~inside], images[inside]


def bench_run(run: runs.Run, n_fonts: int, root: Path) -> dict:
    started = time.time()
    model = run.load_model()
    train, val = unknown.run_splits(run, root)
    team = unknown.team_data(run, root, max_fonts=n_fonts)
    per_font = lambda a: a.reshape(len(team.font_names), -1, 28, 28)  # noqa: E731 - renders are font-major
    fit_fonts, judge_fonts = slice(0, None, 2), slice(1, None, 2)
    half_d, half_s = len(team.digits) // 2, len(team.scribbles) // 2
    k49_unknown, k49_known = k49_partial(run, root)
    drawn = np.stack([prepare(sketch.render(sketch.strokes(im, 280, step=2), 280, sketch.pen_width(280, 2)),
                              run.framing) for im in val.images[:DRAWN]])
    images = {"train": train.images, "val": val.images,
              "fit_known_fonts": per_font(team.known)[fit_fonts].reshape(-1, 28, 28),
              "fit_outliers": np.concatenate([per_font(team.fonts)[fit_fonts].reshape(-1, 28, 28),
                                              team.digits[:half_d], team.scribbles[:half_s]]),
              "fonts_of_unknown": per_font(team.fonts)[judge_fonts].reshape(-1, 28, 28),
              "fonts_of_known": per_font(team.known)[judge_fonts].reshape(-1, 28, 28),
              "mnist": team.digits[half_d:], "scribbles": team.scribbles[half_s:], "drawn_known": drawn,
              "k49_unknown": k49_unknown, "k49_known": k49_known}
    read = {k: unknown.read(model, v) for k, v in images.items() if len(v)}
    final = model.layers[-1].get_weights()
    logits = lambda f: f @ final[0] + final[1]  # noqa: E731 - the output layer before its softmax

    # Candidate scores, higher = more unknown; each sees the training features only, the head also the fit half.
    head = unknown.fit(read["train"][1], train.labels, read["fit_known_fonts"][1], read["fit_outliers"][1])
    normed = read["train"][1] / np.maximum(np.linalg.norm(read["train"][1], axis=1, keepdims=True), 1e-9)
    scores = {
        "max probability": lambda r: -r[0].max(1),
        "energy (logsumexp of logits)": lambda r: -np.log(np.exp(logits(r[1]) - logits(r[1]).max(1, keepdims=True))
                                                          .sum(1)) - logits(r[1]).max(1),
        "Mahalanobis (nearest class)": lambda r: head.distances(r[1]),
        "1-nearest training feature (cosine)": lambda r: -(
            (r[1] / np.maximum(np.linalg.norm(r[1], axis=1, keepdims=True), 1e-9)) @ normed.T).max(1),
        "head: Mahalanobis + features, team outliers (the rule)": lambda r: head.scores(r[1]),
    }
    judged = ("fonts_of_unknown", "mnist", "scribbles", "fonts_of_known", "drawn_known", "k49_unknown", "k49_known")
    table = []
    for name, score in scores.items():
        v = score(read["val"])
        threshold = unknown.threshold_keeping(v, unknown.KEEP)
        row = {"score": name, "val_kept": float((v <= threshold).mean())}
        for part in judged:
            if part in read:
                s = score(read[part])
                row[part] = {"auroc": auroc(v, s), "turned_away": float((s > threshold).mean()), "images": len(s)}
        table.append(row)

    rule = unknown.load(run)
    shipped = None
    if rule is not None:
        v = rule.scores(read["val"][1])
        shipped = {"threshold": rule.threshold, "val_kept": float((~rule.flags(v)).mean()), "fonts": rule.info["fonts"]}
        for part in ("k49_unknown", "k49_known", "drawn_known"):
            s = rule.scores(read[part][1])
            shipped[part] = {"auroc": auroc(v, s), "turned_away": float(rule.flags(s).mean()),
                             "turned_away_count": int(rule.flags(s).sum()), "images": len(s)}
    return {"run": run.id, "fonts": len(team.font_names), "val_images": len(val.labels),
            "candidates": table, "shipped_rule": shipped, "seconds": round(time.time() - started, 1)}


def markdown(result: dict) -> str:
    cols = [("fonts_of_unknown", "fonts, other chars ↑"), ("mnist", "MNIST ↑"), ("scribbles", "scribbles ↑"),
            ("fonts_of_known", "fonts, known chars ↓"), ("drawn_known", "val redrawn ↓"),
            ("k49_unknown", "**k49 other chars ↑ (report)**"), ("k49_known", "k49 known ↓ (report)")]
    lines = [f"`{result['run']}` — AUROC / % turned away at the threshold keeping {unknown.KEEP:.0%} of validation",
             "", "| score | " + " | ".join(c[1] for c in cols) + " |", "| --- |" + " ---: |" * len(cols)]
    for row in result["candidates"]:
        cells = [f"{row[k]['auroc']:.3f} / {row[k]['turned_away']:.0%}" if k in row else "–" for k, _ in cols]
        lines.append(f"| {row['score']} | " + " | ".join(cells) + " |")
    s = result["shipped_rule"]
    if s:
        u = s["k49_unknown"]
        lines += ["", f"Shipped rule (head fitted on all {len(s['fonts'])} fonts): keeps {s['val_kept']:.1%} of "
                  f"validation; k49-partial other characters AUROC {u['auroc']:.3f}, turned away {u['turned_away']:.0%} "
                  f"({u['turned_away_count']} of {u['images']}); k49-partial known characters turned away "
                  f"{s['k49_known']['turned_away']:.1%}; validation redrawn as strokes turned away "
                  f"{s['drawn_known']['turned_away']:.0%}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", nargs="+", help="run ids (default: the shipped default)")
    parser.add_argument("--fonts", type=int, default=32, help="fonts to render (half fit the head, half judge)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "unknown.json")
    args = parser.parse_args(argv)
    root = datasets.data_dir()
    chosen = [runs.get_run(r) for r in args.run] if args.run else [runs.shipped_default()]
    results = [bench_run(run, args.fonts, root) for run in chosen]
    files.write_json(args.out, {"load_avg_at_end": os.getloadavg(), "results": results})
    for r in results:
        print(markdown(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
