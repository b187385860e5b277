"""Training runs: a complete run directory, cancel, crash, seeds, ids, the seed network's exact shape."""
from __future__ import annotations

import json

import numpy as np
import pytest

from kmnist import export, models, runs, unknown
from kmnist.config import TrainConfig, preset
from kmnist.evaluate import VALIDATION_KEYS
from kmnist.train import class_weights, split_train_val, train

TINY = dict(dataset="tiny10", epochs=1, batch_size=32)


# The seed study's network, layer by layer: (type, the settings that define it).
SEED_LAYERS = [
    ("InputLayer", {"batch_shape": (None, 28, 28, 1)}),
    ("Rescaling", {"scale": 1 / 255, "offset": 0.0}),
    ("Conv2D", {"filters": 32, "kernel_size": (3, 3), "strides": (1, 1), "padding": "valid", "activation": "relu"}),
    ("Conv2D", {"filters": 64, "kernel_size": (3, 3), "strides": (1, 1), "padding": "valid", "activation": "relu"}),
    ("MaxPooling2D", {"pool_size": (2, 2), "strides": (2, 2), "padding": "valid"}),
    ("Dropout", {"rate": 0.25}),
    ("Flatten", {}),
    ("Dense", {"units": 256, "activation": "relu", "name": "features"}),
    ("Dropout", {"rate": 0.5}),
    ("Dense", {"units": 49, "activation": "softmax"}),
]


def test_seed_network_and_optimizer_match_the_study():
    model = models.build("seed", 49)
    layers = [(type(layer).__name__, {k: layer.get_config().get(k) for k in want})
              for layer, (_, want) in zip(model.layers, SEED_LAYERS)]
    assert layers == SEED_LAYERS and len(model.layers) == len(SEED_LAYERS), "the seed network is Keras mnist_cnn"
    assert model.count_params() == 2_390_961, "Keras mnist_cnn with 49 outputs has 2,390,961 weights"
    models.compile_model(model, preset("seed"), steps_per_epoch=10)
    opt = model.optimizer.get_config()
    assert (type(model.optimizer).__name__, opt["learning_rate"], opt["rho"], opt["epsilon"], opt["use_ema"]) == (
        "Adadelta", 1.0, 0.95, 1e-7, False), "Keras 3's default learning rate 0.001 silently ruins the seed recipe"
    loss = model.loss.get_config()
    assert (type(model.loss).__name__, loss["label_smoothing"], loss["from_logits"]) == (
        "CategoricalCrossentropy", 0.0, False)


def test_one_epoch_makes_a_complete_run_that_learns(data_dir, runs_dir):
    run = train(TrainConfig(**TINY | {"batch_size": 16}), data_root=data_dir)
    files = {p.name for p in run.path.iterdir()} - {export.BROWSER_FILE}  # placed when it answers like float32
    assert files == {runs.MODEL_FILE, runs.CONFIG_FILE, runs.CLASSES_FILE, runs.HISTORY_FILE, runs.METRICS_FILE,
                     runs.STATUS_FILE, runs.PREDICTIONS_FILE, runs.FRAMING_FILE, export.ONNX_FILE,
                     export.EXPORT_FILE, unknown.RULE_FILE, unknown.ARRAYS_FILE}, "no temporary file is left"
    browser = json.loads((run.path / export.EXPORT_FILE).read_text())["browser"]
    assert browser["state"] in ("placed", "float32") and browser["test_images"] == 100, "checked on the run's test set"
    assert run.path.parent == runs_dir
    assert run.state == "completed" and run.status["epoch"] == 1
    assert run.status["eta_s"] == 0 and run.status["history"] == run.history, "the final status: nothing left"
    assert run.status["metrics"] == {k: run.metrics[k] for k in ("accuracy", "balanced_accuracy", "macro_f1")}
    assert set(run.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    m = run.metrics
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "weighted_f1", "classes_present", "train_seconds",
                "train_images_per_s", "confusion", "per_class", "text", *VALIDATION_KEYS):
        assert key in m, f"metrics.json lacks {key}"
    assert np.asarray(m["confusion"]).sum() == 100 and len(m["per_class"]) == 10 and m["classes_present"] == 10
    assert m["accuracy"] > 0.5, f"one epoch on easy glyphs should beat chance (0.1) by far: {m['accuracy']}"
    # The final validation scores are those of the saved model: for a finished run, the last epoch's.
    assert m["val_images"] == 30
    assert m["val_loss"] == pytest.approx(run.history["val_loss"][-1], rel=1e-3)
    assert m["val_accuracy"] == pytest.approx(run.history["val_accuracy"][-1], abs=1e-6)
    assert m["val_balanced_accuracy"] == pytest.approx(m["val_accuracy"], abs=1e-9), "3 per class: equal weights"
    assert run.config == TrainConfig(**TINY | {"batch_size": 16}), "the config as asked, with no run data in it"
    assert run.framing.box > 0 and (run.path / runs.FRAMING_FILE).is_file(), "the run saves the measured framing"
    # Loading needs nothing but the run directory.
    again = runs.get_run(run.id)
    model = again.load_model()
    assert model.output_shape == (None, 10) and [c.char for c in again.classes][:2] == ["あ", "い"]
    assert again.test_predictions().shape == (100,)


def test_a_cancel_mid_epoch_stops_after_the_batch_and_keeps_a_valid_run(data_dir, runs_dir):
    import keras

    class CancelAtBatch2(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 2:
                (runs_dir / "half" / runs.CANCEL_FILE).touch()

    run = train(TrainConfig(dataset="tiny10", epochs=3, batch_size=16), data_root=data_dir, run_id="half",
                callbacks=[CancelAtBatch2()])
    steps = run.status["batches"]  # 270 training images (300 less 10% validation) in batches of 16: 17
    assert steps == 17
    assert run.state == "cancelled" and run.status["epoch"] == 1 and run.status["batch"] == 3
    assert run.metrics["epochs_done"] == pytest.approx(3 / 17, abs=1e-3) and run.metrics["batches_done"] == 3
    assert runs.stopped_at(run.status) == "epoch 1 of 3, batch 3 of 17"
    assert run.history == {}, "the history holds whole epochs only"
    assert run.has_model and run.load_model().output_shape == (None, 10), "a cancelled run is saved as it stands"


def test_a_failed_model_save_leaves_no_model_file(tmp_path, monkeypatch):
    import keras
    from kmnist import classes as cls
    from kmnist.train import Prepared, save

    def full_disk(model, path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"PK\x03\x04 half a zip")  # a kill or a full disk in the middle of the save
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(keras.Model, "save", full_disk)
    data = Prepared(TrainConfig(**TINY), cls.k49_classes()[:10], train=None, val=None, test=None, weights=None)
    with pytest.raises(OSError, match="No space left"):
        save(tmp_path, models.build("seed", 10), data, {"loss": [1.0]})
    assert list(tmp_path.iterdir()) == [], "nothing half-written under the final name, no temporary file left"


def test_crash_marks_the_run_failed(data_dir):
    import keras

    class Boom(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        train(TrainConfig(**TINY), data_root=data_dir, run_id="broken", callbacks=[Boom()])
    status = json.loads((runs.runs_dir() / "broken" / runs.STATUS_FILE).read_text())
    assert status["state"] == "failed" and "disk on fire" in status["error"]


def test_missing_data_leaves_no_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="download"):
        train(TrainConfig(dataset="kmnist"), data_root=tmp_path)
    assert not runs.runs_dir().exists() or not any(runs.runs_dir().iterdir())


def test_run_ids_are_safe_and_never_overwritten(data_dir):
    for bad in ("../escape", "a/b", "", ".hidden", "x" * 200):
        with pytest.raises(ValueError):
            runs.validate_run_id(bad)
    runs.create_run_dir("same")
    (runs.runs_dir() / "same" / "mine").touch()
    with pytest.raises(FileExistsError, match="never overwritten"):
        train(TrainConfig(**TINY, limit=40), data_root=data_dir, run_id="same")
    assert [p.name for p in (runs.runs_dir() / "same").iterdir()] == ["mine"], "the existing run is untouched"


def test_split_is_seeded_and_stratified():
    labels = np.repeat(np.arange(4), 50)
    tr, va = split_train_val(labels, 0.2, seed=3)
    assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == 200
    assert np.bincount(labels[va]).tolist() == [10] * 4
    assert np.array_equal(va, split_train_val(labels, 0.2, seed=3)[1])
    assert not np.array_equal(va, split_train_val(labels, 0.2, seed=4)[1])


def test_class_weights_favour_rare_classes():
    w = class_weights(np.array([0] * 90 + [1] * 10), 3)
    assert w[1] > w[0] and w[2] == 0
    assert np.isclose((w[np.array([0] * 90 + [1] * 10)]).mean(), 1.0)
