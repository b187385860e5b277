"""Per-class F1 across runs."""
import numpy as np

from kmnist.classes import k49_classes
from kmnist.compare import f1_table
from kmnist.evaluate import report


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
