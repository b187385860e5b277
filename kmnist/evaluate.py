"""Scores of a model on a test set: the report, the confusion matrix, weak classes and confusions.

Averages over classes (balanced accuracy, macro precision/recall/F1) are taken over the classes the test set
holds: a 49-class model scored on 10 characters is judged on those 10, not given zeros for the other 39.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from kmnist import KmnistError
from kmnist.classes import ClassInfo

if TYPE_CHECKING:
    import pandas as pd

WEAK_F1 = 0.8  # the seed study's line between fine and weak classes
VALIDATION_KEYS = ("val_accuracy", "val_balanced_accuracy", "val_loss")  # metrics.json's validation scores


@dataclass
class ClassScore:
    index: int  # class index
    char: str  # the character
    romaji: str  # its reading
    precision: float  # of the images predicted as this class, the share that are
    recall: float  # of the images of this class, the share found
    f1: float  # harmonic mean of precision and recall
    support: int  # test images of this class


@dataclass
class Report:
    accuracy: float  # share of test images classified right
    balanced_accuracy: float  # mean per-class recall (the K49 score)
    macro_precision: float  # unweighted mean over the classes present in the test set
    macro_recall: float  # unweighted mean over the classes present (equals balanced accuracy)
    macro_f1: float  # unweighted mean over the classes present
    classes_present: int  # classes with test images: the macro averages and balanced accuracy are over these
    weighted_precision: float  # support-weighted mean
    weighted_recall: float  # support-weighted mean
    weighted_f1: float  # support-weighted mean
    per_class: list[ClassScore]  # one row per class, in class order
    confusion: list[list[int]]  # rows: true class, columns: predicted class
    text: str  # the classification report as sklearn prints it

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "Report":
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["per_class"] = [ClassScore(**r) for r in data["per_class"]]
        # Reports saved before the field existed had every class present (their macro averages count all).
        fields.setdefault("classes_present", sum(1 for c in fields["per_class"] if c.support))
        return cls(**fields)

    @property
    def confusion_matrix(self) -> np.ndarray:
        return np.asarray(self.confusion, dtype=np.int64)


def report(y_true: np.ndarray, y_pred: np.ndarray, classes: list[ClassInfo]) -> Report:
    """Everything the seed study printed, as data; class averages over the classes present in `y_true`."""
    from sklearn import metrics as skm  # deferred: runs and the CLI import this module, and sklearn takes ~0.8 s
    labels = list(range(len(classes)))
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    wp, wr, wf, _ = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, average="weighted",
                                                        zero_division=0)
    present = s > 0

    def mean(values: np.ndarray) -> float:
        return float(values[present].mean()) if present.any() else 0.0

    shown = [i for i in labels if present[i]]  # the printed report's rows and averages: the same classes
    return Report(
        accuracy=float(np.mean(y_true == y_pred)) if len(y_true) else 0.0,
        balanced_accuracy=mean(r), macro_precision=mean(p), macro_recall=mean(r), macro_f1=mean(f),
        classes_present=int(present.sum()),
        weighted_precision=float(wp), weighted_recall=float(wr), weighted_f1=float(wf),
        per_class=[ClassScore(c.index, c.char, c.romaji, float(p[i]), float(r[i]), float(f[i]), int(s[i]))
                   for i, c in enumerate(classes)],
        confusion=skm.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        text=skm.classification_report(y_true, y_pred, labels=shown, digits=2, zero_division=0,
                                       target_names=[f"{classes[i].char} ({classes[i].romaji})" for i in shown])
        if shown else "",
    )


def validation_scores(probs: np.ndarray, labels: np.ndarray, label_smoothing: float = 0.0) -> dict:
    """A model's final scores on the validation split, as metrics.json keeps them beside the test scores.

    `val_loss` is the training objective (cross-entropy with the run's label smoothing), the quantity Keras
    logs per epoch as val_loss; balanced accuracy is over the classes the split holds.
    """
    num_classes = probs.shape[1]
    target = np.eye(num_classes)[labels] * (1 - label_smoothing) + label_smoothing / num_classes
    # Keras computes a softmax model's loss from its logits, unclipped: clip only what float32 rounded to zero.
    p = np.maximum(np.asarray(probs, np.float64), np.finfo(np.float32).tiny)
    hit = probs.argmax(axis=1) == labels
    recalls = [hit[labels == c].mean() for c in np.unique(labels)]
    return {"val_accuracy": float(hit.mean()), "val_balanced_accuracy": float(np.mean(recalls)),
            "val_loss": float(-(target * np.log(p)).sum(axis=1).mean())}


def weak_classes(rep: Report, threshold: float = WEAK_F1) -> list[ClassScore]:
    """Classes with test images whose F1 is under the threshold, weakest first."""
    return sorted((c for c in rep.per_class if c.support and c.f1 < threshold), key=lambda c: c.f1)


@dataclass
class Confusion:
    true: int  # true class index
    predicted: int  # predicted class index
    count: int  # test images with this (true, predicted) pair
    share: float  # count over the true class's support


def top_confusions(confusion: np.ndarray, true: int | None = None, k: int = 3) -> list[Confusion]:
    """The most frequent mistakes, overall or for one true class."""
    cm = np.asarray(confusion)
    off = cm.copy()
    np.fill_diagonal(off, 0)
    rows = range(len(cm)) if true is None else [true]
    pairs = [(int(off[t, q]), t, q) for t in rows for q in range(len(cm)) if off[t, q] > 0]
    pairs.sort(key=lambda z: (-z[0], z[1], z[2]))
    support = cm.sum(axis=1)
    return [Confusion(t, q, n, n / support[t]) for n, t, q in pairs[:k]]


def misclassified(y_true: np.ndarray, y_pred: np.ndarray, true: int | None = None,
                  predicted: int | None = None) -> np.ndarray:
    """Test-set positions of the mistakes, optionally of one cell of the confusion matrix."""
    hit = y_true != y_pred
    if true is not None:
        hit &= y_true == true
    if predicted is not None:
        hit &= y_pred == predicted
    return np.flatnonzero(hit)


def cell_indices(y_true: np.ndarray, y_pred: np.ndarray, true: int, predicted: int) -> np.ndarray:
    """Test-set positions in one cell of the confusion matrix (the diagonal included)."""
    return np.flatnonzero((y_true == true) & (y_pred == predicted))


# Runs side by side: per-class scores across runs, matched by character (runs may know different class sets).

def f1_table(reports: Iterable[tuple[str, Report]], chars: Sequence[str]) -> pd.DataFrame:
    """F1 of each run (rows, by id) on each character (columns); NaN where a run has no such class.

    Runs that know none of the characters are left out.
    """
    import pandas as pd  # deferred: scoring from the CLI need not pay for pandas
    rows = {}
    for run_id, rep in reports:
        f1 = {c.char: c.f1 if c.support else np.nan for c in rep.per_class}
        values = [f1.get(ch, np.nan) for ch in chars]
        if not all(np.isnan(values)):
            rows[run_id] = values
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(chars), dtype=float)


# A run scored on another dataset: class tables matched by character, or refused.

class ClassTableError(KmnistError, ValueError):
    """A run and a dataset whose class tables do not map onto each other; the message names both."""


def describe_table(classes: Sequence[ClassInfo], shown: int = 12) -> str:
    """A class table in a few words: its size and its characters."""
    chars = [c.char for c in classes]
    listed = " ".join(chars if len(chars) <= shown else chars[: shown - 2] + ["…", chars[-1]])
    return f"{len(chars)} classes ({listed})"


def map_by_character(source: Sequence[ClassInfo], target: Sequence[ClassInfo]) -> np.ndarray:
    """For each class of `source`, the index of the same character in `target`, -1 where it has none.

    KMNIST is K49 restricted to 10 characters, so the 10-class table maps into K49's: お→4 き→6 す→12 つ→17
    な→20 は→25 ま→30 や→35 れ→41 を→46.
    """
    where = {c.char: c.index for c in target}
    return np.array([where.get(c.char, -1) for c in source], dtype=np.int64)


def labels_for_run(labels: np.ndarray, data_classes: Sequence[ClassInfo], run_classes: Sequence[ClassInfo],
                   run_name: str, data_name: str) -> tuple[np.ndarray, np.ndarray]:
    """A dataset's labels in a run's class table, and the mask of images whose class the run knows.

    Tables with the same characters in the same order need nothing. Otherwise one table must hold the other
    and labels map by character: a 10-class KMNIST run on K49 data is scored on the images of its 10
    characters; a K49 run on KMNIST data on all of them (its answers outside the 10 count as mistakes).
    Anything else is refused with a ClassTableError naming both tables.
    """
    labels = np.asarray(labels)
    if len(labels) and labels.max() >= len(data_classes):
        raise ClassTableError(f"{data_name} has labels up to {labels.max()}, but its class table has "
                         f"{len(data_classes)} classes")
    if [c.char for c in data_classes] == [c.char for c in run_classes]:
        return labels, np.ones(len(labels), bool)
    to_run = map_by_character(data_classes, run_classes)
    run_inside = bool((map_by_character(run_classes, data_classes) >= 0).all())
    if not (run_inside or (to_run >= 0).all()):
        raise ClassTableError(
            f"{run_name} and {data_name} have different class tables that do not map by character: the run "
            f"knows {describe_table(run_classes)}, the dataset has {describe_table(data_classes)}. Score the run "
            "on a dataset with its own class table, or on one whose table holds all of the run's characters.")
    mapped = to_run[labels]
    keep = mapped >= 0
    return mapped[keep].astype(labels.dtype), keep
