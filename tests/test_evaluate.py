"""Scores on a known confusion."""
from __future__ import annotations

import numpy as np

from kmnist import classes as cls
from kmnist import evaluate
from kmnist.classes import k49_classes
from kmnist.evaluate import f1_table, report

CLASSES = cls.k49_classes()[:3]  # あ い う


def known():
    # あ: 4 right; い: 2 right, 2 called う; う: 3 right, 1 called あ
    y_true = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
    y_pred = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2, 2, 0])
    return y_true, y_pred


def test_report_on_known_confusion():
    rep = evaluate.report(*known(), CLASSES)
    assert rep.confusion == [[4, 0, 0], [0, 2, 2], [1, 0, 3]]
    assert rep.accuracy == 9 / 12
    assert np.isclose(rep.balanced_accuracy, (1 + 0.5 + 0.75) / 3)
    i = rep.per_class[1]
    assert (i.char, i.precision, i.recall, i.support) == ("い", 1.0, 0.5, 4)
    assert np.isclose(i.f1, 2 / 3)
    assert "い (i)" in rep.text and "macro avg" in rep.text
    assert evaluate.Report.from_json(rep.to_json()) == rep


def test_weak_classes_and_confusions():
    rep = evaluate.report(*known(), CLASSES)
    weak = evaluate.weak_classes(rep, 0.8)
    assert [c.char for c in weak] == ["い", "う"], "weakest first, under the threshold only"
    assert evaluate.weak_classes(rep, 0.5) == []
    top = evaluate.top_confusions(rep.confusion_matrix, k=5)
    assert [(c.true, c.predicted, c.count) for c in top] == [(1, 2, 2), (2, 0, 1)]
    assert top[0].share == 0.5
    assert [c.predicted for c in evaluate.top_confusions(rep.confusion_matrix, true=2)] == [0]


def test_misclassified_indices():
    y_true, y_pred = known()
    assert evaluate.misclassified(y_true, y_pred).tolist() == [6, 7, 11]
    assert evaluate.misclassified(y_true, y_pred, true=1, predicted=2).tolist() == [6, 7]
    assert evaluate.cell_indices(y_true, y_pred, 0, 0).tolist() == [0, 1, 2, 3]


def test_balanced_accuracy_ignores_classes_absent_from_test():
    rep = evaluate.report(np.array([0, 0, 1]), np.array([0, 1, 1]), CLASSES)
    assert np.isclose(rep.balanced_accuracy, (0.5 + 1.0) / 2)


def test_f1_table_matches_runs_by_character():
    k49 = k49_classes()
    ten = [k49[i] for i in (4, 6, 20)]  # お き な, a smaller model's classes
    y = np.array([0, 1, 2, 2])
    small = report(y, np.array([0, 1, 2, 0]), ten)
    big = report(np.array([4, 6, 20, 20]), np.array([4, 6, 20, 20]), k49)
    table = f1_table([("small", small), ("big", big), ("digits", small)], ["な", "を"])
    assert list(table.columns) == ["な", "を"]
    assert table.loc["big", "な"] == 1.0 and table.loc["small", "な"] == small.per_class[2].f1
    assert np.isnan(table.loc["small", "を"]) and np.isnan(table.loc["big", "を"]), "を has no test images"
    assert f1_table([("small", small)], ["ん"]).empty, "runs that know none of the characters are left out"
