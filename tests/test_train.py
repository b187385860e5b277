"""Training runs: a complete run directory, cancel, crash, seeds, ids, the seed network's exact shape."""
from __future__ import annotations

import json

import numpy as np
import pytest

from kmnist import models, runs
from kmnist.config import TrainConfig, preset
from kmnist.train import class_weights, split_train_val, train

TINY = dict(dataset="tiny10", epochs=1, batch_size=32)


def test_seed_network_matches_the_study():
    model = models.build("seed", 49)
    assert model.count_params() == 2_390_961, "Keras mnist_cnn with 49 outputs has 2,390,961 weights"
    assert model.input_shape == (None, 28, 28, 1) and model.output_shape == (None, 49)
    opt = models.optimizer(preset("seed"), steps_per_epoch=10)
    assert type(opt).__name__ == "Adadelta"
    assert np.isclose(float(opt.learning_rate), 1.0), "Keras 3's default 0.001 silently ruins the seed recipe"
    assert np.isclose(opt.rho, 0.95)
    c = preset("seed")
    assert (c.batch_size, c.epochs) == (128, 12)


def test_one_epoch_makes_a_complete_run(data_dir, runs_dir):
    run = train(TrainConfig(**TINY), data_root=data_dir)
    files = {p.name for p in run.path.iterdir()}
    assert {runs.MODEL_FILE, runs.CONFIG_FILE, runs.CLASSES_FILE, runs.HISTORY_FILE, runs.METRICS_FILE,
            runs.STATUS_FILE, runs.PREDICTIONS_FILE} <= files
    assert run.path.parent == runs_dir
    assert run.state == "completed" and run.status["epoch"] == 1
    assert set(run.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    m = run.metrics
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "weighted_f1", "train_seconds",
                "train_images_per_s", "confusion", "per_class", "text"):
        assert key in m, f"metrics.json lacks {key}"
    assert np.asarray(m["confusion"]).sum() == 100 and len(m["per_class"]) == 10
    assert run.config.framing, "the run saves the measured framing"
    # Loading needs nothing but the run directory.
    again = runs.get_run(run.id)
    model = again.load_model()
    assert model.output_shape == (None, 10) and [c.char for c in again.classes][:2] == ["あ", "い"]
    assert again.test_predictions().shape == (100,)


def test_learns_the_generated_glyphs(data_dir):
    run = train(TrainConfig(dataset="tiny10", epochs=4, batch_size=16), data_root=data_dir)
    assert run.metrics["accuracy"] > 0.5, f"4 epochs on easy glyphs should beat chance (0.1): {run.metrics}"


def test_cancel_stops_after_the_batch_and_keeps_a_valid_run(data_dir):
    import keras

    class CancelAtBatch2(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 2:
                (self.run_dir / runs.CANCEL_FILE).touch()

    cb = CancelAtBatch2()
    cb.run_dir = runs.runs_dir() / "cancel-me"
    run = train(TrainConfig(dataset="tiny10", epochs=3, batch_size=16), data_root=data_dir,
                run_id="cancel-me", callbacks=[cb])
    assert run.state == "cancelled"
    assert run.metrics["epochs_done"] < 3, "training must stop before running all epochs"
    assert run.has_model and run.load_model().output_shape == (None, 10)


def test_crash_marks_the_run_failed(data_dir):
    import keras

    class Boom(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        train(TrainConfig(**TINY), data_root=data_dir, run_id="broken", callbacks=[Boom()])
    status = json.loads((runs.runs_dir() / "broken" / runs.STATUS_FILE).read_text())
    assert status["state"] == "failed" and "disk on fire" in status["error"]


def test_bad_requests_leave_no_run(data_dir, tmp_path):
    with pytest.raises(ValueError, match="unknown architecture"):
        train(TrainConfig(dataset="tiny10", arch="nope"), data_root=data_dir)
    with pytest.raises(FileNotFoundError, match="download"):
        train(TrainConfig(dataset="kmnist"), data_root=tmp_path)
    assert not runs.runs_dir().exists() or not any(runs.runs_dir().iterdir())


def test_run_ids_are_safe_and_never_overwritten(data_dir):
    for bad in ("../escape", "a/b", "", ".hidden", "x" * 200):
        with pytest.raises(ValueError):
            runs.validate_run_id(bad)
    train(TrainConfig(**TINY, limit=40), data_root=data_dir, run_id="same")
    with pytest.raises(FileExistsError):
        train(TrainConfig(**TINY, limit=40), data_root=data_dir, run_id="same")


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
