"""ONNX export: verified against Keras, placed atomically, recorded; training exports; shipped runs carry theirs."""
from __future__ import annotations

import numpy as np
import pytest

from kmnist import export, files, models, runs
from kmnist.cli import main
from kmnist.config import TrainConfig
from kmnist.predict import OnnxPredictor, Predictor
from kmnist.preprocess import to_input
from kmnist.train import train


def test_export_matches_keras_and_serves_one_image(tmp_path):
    model = models.build("resnet-bn", 10)  # untrained weights still have to match exactly
    info = export.export_model(model, tmp_path)
    onnx_file = tmp_path / export.ONNX_FILE
    assert onnx_file.is_file() and info["bytes"] == onnx_file.stat().st_size
    assert info["sha256"] == export.sha256(onnx_file)
    assert info["max_abs_diff"] <= export.TOLERANCE, f"ONNX differs from Keras by {info['max_abs_diff']}"
    assert files.read_json(tmp_path / export.EXPORT_FILE) == info
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary files left behind"
    images = export.check_batch(8, seed=3)
    onnx, keras = OnnxPredictor(onnx_file), Predictor(model)
    for image in images:
        np.testing.assert_allclose(onnx(image), keras(image), atol=1e-4, err_msg="one-image predictors disagree")


def test_a_failed_export_is_recorded_and_leaves_no_file(tmp_path, monkeypatch):
    model = models.build("seed", 10)
    monkeypatch.setattr(export, "TOLERANCE", -1.0)  # no graph can pass: the check must refuse it
    info = export.export_or_record(model, tmp_path)
    assert info["state"] == "failed" and "ExportMismatchError" in info["error"]
    assert not (tmp_path / export.ONNX_FILE).exists(), "an unverified model.onnx was placed"
    assert files.read_json(tmp_path / export.EXPORT_FILE)["state"] == "failed"


@pytest.mark.slow
def test_training_exports_and_survives_a_failed_export(data_dir, monkeypatch):
    run = train(TrainConfig(dataset="tiny10", epochs=1, batch_size=32), data_root=data_dir)
    assert export.onnx_path(run) is not None, "train wrote no model.onnx"
    assert files.read_json(run.path / export.EXPORT_FILE)["state"] == "exported"

    def broken(*args, **kwargs):
        raise RuntimeError("converter exploded")
    import tf2onnx
    monkeypatch.setattr(tf2onnx.convert, "from_keras", broken)
    run = train(TrainConfig(dataset="tiny10", epochs=1, batch_size=32), data_root=data_dir, run_id="no-export")
    assert run.state == "completed", "a failed export must not fail the training run"
    assert export.onnx_path(run) is None
    assert "converter exploded" in files.read_json(run.path / export.EXPORT_FILE)["error"]


def test_cli_export_of_a_run_without_model_is_an_error(runs_dir, capsys):
    run_dir = runs.create_run_dir("empty")
    files.write_json(run_dir / runs.CONFIG_FILE, TrainConfig().to_json())
    assert main(["export", "--run", "empty"]) == 2
    assert "has no model.keras" in capsys.readouterr().err


@pytest.mark.parametrize("run_id", sorted(p.name for p in runs.SHIPPED.iterdir() if p.is_dir()))
def test_shipped_runs_ship_a_verified_export(run_id):
    run = runs.get_run(run_id)
    path = export.onnx_path(run)
    assert path is not None, f"{run_id} has no model.onnx: python -m kmnist export --run {run_id}"
    info = files.read_json(run.path / export.EXPORT_FILE)
    assert info["sha256"] == export.sha256(path), "model.onnx changed since its export was checked"
    assert info["max_abs_diff"] <= export.TOLERANCE
    x = export.check_batch(16, seed=1)
    keras_top1 = np.asarray(run.load_model()(to_input(x), training=False)).argmax(1)
    onnx = OnnxPredictor(path)
    assert [int(onnx(img).argmax()) for img in x] == keras_top1.tolist(), "ONNX and Keras disagree on top-1"
