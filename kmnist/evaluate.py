"""Scores of a model on a test set: the report, the confusion matrix, weak classes and confusions."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from kmnist.classes import ClassInfo

if TYPE_CHECKING:
    import pandas as pd

WEAK_F1 = 0.8  # the seed study's line between fine and weak classes


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
    macro_precision: float  # unweighted mean over classes
    macro_recall: float  # unweighted mean over classes
    macro_f1: float  # unweighted mean over classes
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
        return cls(**fields)

    @property
    def confusion_matrix(self) -> np.ndarray:
        return np.asarray(self.confusion, dtype=np.int64)


def report(y_true: np.ndarray, y_pred: np.ndarray, classes: list[ClassInfo]) -> Report:
    """Everything the seed study printed, as data."""
    from sklearn import metrics as skm  # deferred: runs and the CLI import this module, and sklearn takes ~0.8 s
    labels = list(range(len(classes)))
    names = [f"{c.char} ({c.romaji})" for c in classes]
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    mp, mr, mf, _ = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    wp, wr, wf, _ = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, average="weighted",
                                                        zero_division=0)
    present = s > 0  # balanced accuracy over the classes the test set holds
    return Report(
        accuracy=float(np.mean(y_true == y_pred)),
        balanced_accuracy=float(r[present].mean()) if present.any() else 0.0,
        macro_precision=float(mp), macro_recall=float(mr), macro_f1=float(mf),
        weighted_precision=float(wp), weighted_recall=float(wr), weighted_f1=float(wf),
        per_class=[ClassScore(c.index, c.char, c.romaji, float(p[i]), float(r[i]), float(f[i]), int(s[i]))
                   for i, c in enumerate(classes)],
        confusion=skm.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        text=skm.classification_report(y_true, y_pred, labels=labels, target_names=names, digits=2,
                                       zero_division=0),
    )


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
