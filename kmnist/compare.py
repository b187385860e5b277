"""Per-class scores side by side across runs, matched by character (runs may know different class sets)."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from kmnist.evaluate import Report


def f1_table(reports: Iterable[tuple[str, Report]], chars: Sequence[str]) -> pd.DataFrame:
    """F1 of each run (rows, by id) on each character (columns); NaN where a run has no such class.

    Runs that know none of the characters are left out.
    """
    rows = {}
    for run_id, rep in reports:
        f1 = {c.char: c.f1 if c.support else np.nan for c in rep.per_class}
        values = [f1.get(ch, np.nan) for ch in chars]
        if not all(np.isnan(values)):
            rows[run_id] = values
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(chars), dtype=float)
