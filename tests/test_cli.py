"""The command line's --json shapes and its clean failures."""
from __future__ import annotations

import json
import socket

import numpy as np
import pytest
from PIL import Image

from kmnist import datasets
from kmnist.cli import main
from tests.conftest import glyphs


def run_json(capsys, *argv):
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


@pytest.fixture
def trained(data_dir, capsys):
    code, summary = run_json(capsys, "train", "--dataset", "tiny10", "--epochs", "2", "--batch-size", "16",
                             "--data-dir", str(data_dir), "--run-id", "cli-run")
    assert code == 0
    return summary


def test_train_json(trained):
    assert set(trained) >= {"run", "accuracy", "balanced_accuracy", "macro_f1", "train_seconds"}
    assert trained["run"] == "cli-run" and 0 <= trained["accuracy"] <= 1


def test_evaluate_json(trained, data_dir, capsys):
    code, rep = run_json(capsys, "evaluate", "--run", "cli-run", "--data-dir", str(data_dir))
    assert code == 0
    assert set(rep) >= {"accuracy", "balanced_accuracy", "macro_f1", "weighted_f1", "per_class"}
    assert rep["accuracy"] == pytest.approx(trained["accuracy"]), "evaluate agrees with the run's own score"
    row = rep["per_class"][0]
    assert set(row) == {"index", "char", "precision", "recall", "f1", "support"} and row["char"] == "あ"


def test_predict_json_both_polarities(trained, tmp_path, capsys):
    glyph = glyphs(np.array([3]), 10)[0]
    dataset_style = tmp_path / "dataset.png"
    Image.fromarray(glyph).save(dataset_style)
    drawing = tmp_path / "drawing.jpg"
    Image.fromarray(255 - glyph).resize((300, 300)).convert("RGB").save(drawing)
    code, out = run_json(capsys, "predict", "--run", "cli-run", str(dataset_style), str(drawing))
    assert code == 0 and [r["file"] for r in out] == [str(dataset_style), str(drawing)]
    for r in out:
        assert len(r["top"]) == 5 and set(r["top"][0]) == {"index", "char", "prob"}
        probs = [g["prob"] for g in r["top"]]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1.0001


def test_predict_reports_bad_files(trained, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert main(["predict", "--run", "cli-run", str(bad)]) == 1
    assert "not a readable" in capsys.readouterr().err


def test_runs_and_activate(trained, capsys):
    code, rows = run_json(capsys, "runs")
    assert code == 0 and rows[0]["id"] == "cli-run" and not rows[0]["active"]
    assert main(["activate", "cli-run"]) == 0
    capsys.readouterr()
    _, rows = run_json(capsys, "runs")
    assert [r["id"] for r in rows if r["active"]] == ["cli-run"]


def test_download_offline_fails_cleanly(tmp_path, monkeypatch, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    release = datasets.OFFICIAL["k49"]
    monkeypatch.setitem(datasets.OFFICIAL, "k49", datasets.OfficialDataset(
        "k49", f"http://127.0.0.1:{port}", release.files, release.title))
    assert main(["download", "k49", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Download failed") and "k49-train-imgs.npz" in err and "Traceback" not in err


def test_missing_dataset_is_a_message_not_a_traceback(tmp_path, capsys):
    assert main(["train", "--dataset", "kmnist", "--data-dir", str(tmp_path)]) == 2
    assert "python -m kmnist download kmnist" in capsys.readouterr().err


def test_datasets_json(data_dir, capsys):
    code, rows = run_json(capsys, "datasets", "--data-dir", str(data_dir))
    by_name = {r["name"]: r for r in rows}
    assert code == 0 and by_name["tiny49"]["trainable"] and not by_name["k49"]["trainable"]


def test_a_preset_brings_its_architecture_and_settings(data_dir, capsys):
    code, summary = run_json(capsys, "train", "--preset", "k49", "--dataset", "tiny49", "--epochs", "1",
                             "--data-dir", str(data_dir), "--run-id", "k49-smoke")
    assert code == 0
    from kmnist import runs
    config = runs.get_run("k49-smoke").config
    assert (config.arch, config.class_weighting, config.dataset) == ("resnet-bn", "balanced", "tiny49")
