"""benchmarks/selection.py: a candidate's row re-scores the very validation split its run was chosen on."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from kmnist.config import TrainConfig
from kmnist.train import train

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import selection  # noqa: E402


def test_a_candidate_row_matches_its_runs_own_validation_scores(data_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("KMNIST_DATA_DIR", str(data_dir))
    config = TrainConfig(dataset="tiny10", epochs=2, batch_size=16, seed=3, augment=1.0, cutmix=0.5)
    run = train(config)
    row = selection.candidate(run.path)
    m = run.metrics
    for key in ("val_accuracy", "val_loss"):
        assert row["val"][key] == pytest.approx(m[key], rel=1e-5), f"{key}: the split is re-carved with the run's seed"
    assert row["val_images"] == m["val_images"] == 30
    assert set(row["val_tta"]) == set(row["val"]) and 0 <= row["val_tta"]["val_accuracy"] <= 1
    assert (row["cutmix"], row["seed"], row["test_accuracy"]) == (0.5, 3, m["accuracy"])
    out = tmp_path / "selection.json"
    assert selection.main([str(run.path), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["candidates"][0]["run"] == run.id
