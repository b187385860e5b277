"""ONNX export: verified against Keras, placed atomically, recorded; training exports; shipped runs carry theirs."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from kmnist import datasets, export, files, models, runs
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


def shipped_copy(runs_dir, run_id: str = "kmnist6k-resnet-bn-e100") -> runs.Run:
    """A shipped run copied into the test's runs dir without its browser copy, to make one afresh."""
    shutil.copytree(runs.get_run(run_id).path, runs_dir / "copy", ignore=shutil.ignore_patterns(export.BROWSER_FILE))
    return runs.get_run("copy")


def small_check(shared_data, monkeypatch) -> export.Images:
    """The real kmnist6k images, with fewer of them used, so a quantization takes seconds."""
    monkeypatch.setattr(export, "CALIBRATION_IMAGES", 256)
    monkeypatch.setattr(export, "CHECK_TEST_IMAGES", 1000)
    return export.Images(datasets.load_images("kmnist6k", "train", shared_data),
                         datasets.load_images("kmnist6k", "test", shared_data),
                         datasets.load_labels("kmnist6k", "test", shared_data), "kmnist6k")


def test_the_browser_gets_a_smaller_copy_that_answers_like_float32(runs_dir, shared_data, monkeypatch):
    run = shipped_copy(runs_dir)
    info = export.browser_copy(run.path, small_check(shared_data, monkeypatch))
    path = run.path / export.BROWSER_FILE
    assert info["state"] == "placed" and export.browser_path(run) == path, info
    assert info["sha256"] == export.sha256(path) and info["bytes"] == path.stat().st_size
    # int8 is a quarter of the bytes, float16 half; which one is placed depends on which answers like float32
    quarter = info["method"].startswith("int8 QDQ")
    assert quarter or info["method"].startswith("float16"), info
    assert info["bytes"] < export.onnx_path(run).stat().st_size / (3 if quarter else 1.8), info
    assert info["test_images"] == 1000 and info["accuracy_float32"] - info["accuracy"] <= export.MAX_ACCURACY_DROP
    assert info["top1_agreement"] >= export.MIN_AGREEMENT, info
    assert info["unknown_agreement"] >= export.MIN_AGREEMENT, "the browser decides 'none of these' as the server does"
    small, full = OnnxPredictor(path), OnnxPredictor(export.onnx_path(run))
    x = datasets.load_images("kmnist6k", "test", shared_data)[-200:]  # one image at a time, as the canvas asks
    same = np.mean([small(i).argmax() == full(i).argmax() for i in x])
    assert same >= 0.98, f"the placed copy gives model.onnx's top-1 on only {same:.1%} of 200 test images"


@pytest.mark.slow  # two quantizations of a real model, checked on 1,000 test images
def test_no_smaller_copy_is_placed_when_none_answers_like_float32(runs_dir, shared_data, monkeypatch):
    run = shipped_copy(runs_dir)
    monkeypatch.setattr(export, "MIN_AGREEMENT", 1.01)  # no copy can agree that well: both are turned down
    info = export.browser_copy(run.path, small_check(shared_data, monkeypatch))
    assert info["state"] == "float32" and [t["method"][:5] for t in info["turned_down"]] == ["int8 ", "float"]
    assert not (run.path / export.BROWSER_FILE).exists() and export.browser_path(run) == export.onnx_path(run)


def test_without_data_the_browser_gets_model_onnx_and_export_json_says_why(runs_dir, tmp_path, monkeypatch):
    run = shipped_copy(runs_dir)
    (run.path / export.BROWSER_FILE).write_bytes(b"an older copy")  # belongs to an earlier export
    monkeypatch.setenv("KMNIST_DATA_DIR", str(tmp_path / "nothing-here"))
    info = export.browser_copy(run.path)
    assert info["state"] == "skipped" and "kmnist6k" in info["why"], info
    assert export.browser_path(run) == export.onnx_path(run), "a copy of an earlier export outlived it"


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
    browser = info["browser"]  # the browser's smaller copy, checked on the test set against model.onnx
    assert browser["state"] == "placed", f"{run_id}: python -m kmnist export --run {run_id} with the data here"
    assert browser["sha256"] == export.sha256(export.browser_path(run)), "the browser's copy changed since its check"
    assert browser["accuracy_float32"] - browser["accuracy"] <= export.MAX_ACCURACY_DROP
    assert browser["top1_agreement"] >= export.MIN_AGREEMENT and browser["test_images"] == 10_000
