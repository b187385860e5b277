"""Scores on a known confusion."""
from __future__ import annotations

import numpy as np
import pytest

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


KMNIST_CHARS = "おきすつなはまやれを"


def kmnist_table() -> list[cls.ClassInfo]:
    return [cls.make_class(i, ch) for i, ch in enumerate(KMNIST_CHARS)]


def test_macro_scores_are_over_the_classes_present():
    # A 49-class table, test images of 10 classes only, 9 of 10 right per class: every class average is 0.9ish.
    k49 = k49_classes()
    present = [4, 6, 12, 17, 20, 25, 30, 35, 41, 46]
    y_true = np.repeat(present, 10)
    y_pred = y_true.copy()
    y_pred[::10] = np.roll(present, 1)  # one mistake per class, into another present class
    rep = report(y_true, y_pred, k49)
    assert rep.classes_present == 10
    assert rep.accuracy == pytest.approx(0.9)
    assert rep.macro_recall == rep.balanced_accuracy == pytest.approx(0.9)
    assert rep.macro_precision == pytest.approx(0.9) and rep.macro_f1 == pytest.approx(0.9), (
        f"macro F1 {rep.macro_f1:.3f}: absent classes must not count as zeros")
    assert rep.weighted_f1 == pytest.approx(rep.macro_f1)
    assert "お (o)" in rep.text and "あ (a)" not in rep.text, "the printed report lists the classes scored"
    assert evaluate.Report.from_json(rep.to_json()) == rep
    # Reports saved before the field existed scored all their classes.
    old = rep.to_json()
    del old["classes_present"]
    assert evaluate.Report.from_json(old).classes_present == 10


def test_a_present_class_never_predicted_scores_zero_and_counts():
    rep = report(np.array([0, 0, 1, 1]), np.array([0, 0, 0, 0]), CLASSES)
    assert rep.classes_present == 2 and rep.per_class[1].f1 == 0.0
    assert rep.macro_f1 == pytest.approx((2 / 3 + 0) / 2)


def test_kmnist_maps_into_k49_by_character():
    assert evaluate.map_by_character(kmnist_table(), k49_classes()).tolist() == [4, 6, 12, 17, 20, 25, 30, 35, 41, 46]
    assert evaluate.map_by_character(k49_classes(), kmnist_table())[[0, 4, 46]].tolist() == [-1, 0, 9]


def test_a_10_class_run_on_49_class_labels_keeps_its_characters():
    k49_labels = np.array([4, 0, 46, 20, 48, 6])  # お あ を な ゝ き
    y, known = evaluate.labels_for_run(k49_labels, k49_classes(), kmnist_table(), "run r", "dataset k49")
    assert known.tolist() == [True, False, True, True, False, True]
    assert y.tolist() == [0, 9, 4, 1], "labels in the run's own class table"


def test_a_49_class_run_on_10_class_labels_scores_them_all():
    y, known = evaluate.labels_for_run(np.array([0, 9, 4]), kmnist_table(), k49_classes(), "run r", "dataset d")
    assert known.all() and y.tolist() == [4, 46, 20]


def test_the_same_table_needs_no_mapping():
    labels = np.array([2, 0, 1])
    y, known = evaluate.labels_for_run(labels, CLASSES, list(CLASSES), "run r", "dataset d")
    assert y.tolist() == [2, 0, 1] and known.all()


@pytest.mark.parametrize("data_table", [cls.digit_classes(), k49_classes()[:5] + [cls.make_class(5, "を")]])
def test_unrelated_class_tables_are_refused_naming_both(data_table):
    with pytest.raises(evaluate.ClassTableError) as e:
        evaluate.labels_for_run(np.array([0, 1]), data_table, kmnist_table(), "run kmnist-seed", "dataset other")
    message = str(e.value)
    assert "run kmnist-seed" in message and "dataset other" in message
    assert "10 classes (お き す つ な は ま や れ を)" in message, "the run's table"
    assert f"{len(data_table)} classes ({data_table[0].char} " in message, "the dataset's table"


def test_describe_table_shortens_long_tables():
    assert evaluate.describe_table(k49_classes()) == "49 classes (あ い う え お か き く け こ … ゝ)"


def test_labels_outside_the_dataset_table_are_an_error():
    with pytest.raises(ValueError, match="labels up to 7"):
        evaluate.labels_for_run(np.array([7]), CLASSES, CLASSES, "run r", "dataset d")


def test_validation_scores():
    probs = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1], [0.1, 0.1, 0.8]])
    labels = np.array([0, 1, 1, 2])
    scores = evaluate.validation_scores(probs, labels)
    assert set(scores) == set(evaluate.VALIDATION_KEYS)
    assert scores["val_accuracy"] == 0.75 and scores["val_balanced_accuracy"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert scores["val_loss"] == pytest.approx(-np.mean(np.log([0.8, 0.7, 0.4, 0.8])))
    smoothed = evaluate.validation_scores(probs, labels, label_smoothing=0.3)["val_loss"]
    target = np.eye(3)[labels] * 0.7 + 0.1
    assert smoothed == pytest.approx(-(target * np.log(probs)).sum(axis=1).mean()), "the training objective"
