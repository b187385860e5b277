"""A training run: data split, model, fit, and a run directory another process can follow and load."""
from __future__ import annotations

import os
import signal
import threading
import time
import traceback
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from kmnist import classes as cls, files
from kmnist import datasets, runs
from kmnist.config import TrainConfig
from kmnist.evaluate import report
from kmnist.preprocess import measure_framing, to_input

STATUS_EVERY = 0.5  # seconds between status rewrites during an epoch


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def split_train_val(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded, per-class (stratified) split of training positions into train and validation."""
    rng = np.random.default_rng(seed)
    train_idx, val_idx = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_val = int(round(len(idx) * fraction))
        val_idx.append(idx[:n_val])
        train_idx.append(idx[n_val:])
    return np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(val_idx))


def class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Inverse-frequency weights with mean 1 over the training images."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    present = max(int((counts > 0).sum()), 1)
    weights = np.where(counts > 0, len(labels) / (present * np.maximum(counts, 1)), 0.0)
    return weights.astype(np.float32)


def strategy_for(name: str):
    import tensorflow as tf
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        # Without GPUs MirroredStrategy() would take CPU:0 alone; replicate over every logical CPU
        # device instead, so a CPU split into logical devices (as the tests do) really runs replicas.
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(None if tf.config.list_logical_devices("GPU") else cpus)
    if name == "multi-worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}; choose default, mirrored or multi-worker")


def make_pipeline(images, labels, num_classes, config: TrainConfig, training: bool, weights=None):
    """A tf.data pipeline of (image, one-hot[, weight]) batches; augmentation only when training."""
    import tensorflow as tf
    from kmnist.augment import augmenter
    x = to_input(images)
    y = np.eye(num_classes, dtype=np.float32)[labels]
    parts = (x, y) if weights is None else (x, y, weights[labels])
    ds = tf.data.Dataset.from_tensor_slices(parts)
    if training:
        ds = ds.shuffle(len(x), seed=config.seed, reshuffle_each_iteration=True)
    ds = ds.batch(config.batch_size)
    if training and config.augment > 0:
        aug = augmenter(config.augment, config.seed, config.elastic)
        ds = ds.map(lambda x, *rest: (aug(x), *rest), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


class Cancelled(Exception):
    pass


def _make_callbacks(run_dir: Path, config: TrainConfig, steps: int, started: float, stop: threading.Event):
    import keras

    class Follow(keras.callbacks.Callback):
        """Rewrites status.json as training goes, and stops after the batch a cancel was asked in."""

        def __init__(self):
            super().__init__()
            self.history: dict[str, list[float]] = {}
            self.epoch = 0
            self.last_write = 0.0

        def write(self, state: str, batch: int, logs: dict | None = None):
            done = self.epoch * steps + batch
            elapsed = time.time() - started
            eta = elapsed / done * (config.epochs * steps - done) if done else None
            files.write_json(run_dir / runs.STATUS_FILE, {
                "state": state, "epoch": self.epoch + 1 if state == "running" else self.epoch,
                "epochs": config.epochs, "batch": batch, "batches": steps, "elapsed_s": elapsed,
                "eta_s": eta, "updated": now(), "pid": os.getpid(),
                "metrics": {k: float(v) for k, v in (logs or {}).items()}, "history": self.history})
            self.last_write = time.time()

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
            self.write("running", 0)

        def on_train_batch_end(self, batch, logs=None):
            if stop.is_set() or (run_dir / runs.CANCEL_FILE).exists():
                stop.set()
                self.model.stop_training = True
            if time.time() - self.last_write > STATUS_EVERY:
                self.write("running", batch + 1, logs)

        def on_epoch_end(self, epoch, logs=None):
            for k, v in (logs or {}).items():
                self.history.setdefault(k, []).append(float(v))
            files.write_json(run_dir / runs.HISTORY_FILE, self.history)
            self.write("running", steps, logs)  # self.epoch is still this epoch: "epoch e+1, all batches done"

    return Follow()


def train(config: TrainConfig, dataset: datasets.Dataset | None = None, callbacks: Sequence = (),
          runs_root: Path | None = None, data_root: Path | None = None, run_id: str | None = None,
          verbose: int = 0, start_from=None, extra: tuple[np.ndarray, np.ndarray] | None = None) -> runs.Run:
    """Train a model as `config` says and leave a complete run directory, also when cancelled or failed.

    Fine-tuning (kmnist.finetune) passes `start_from`, a model whose weights training starts from, and
    `extra`, (images, labels) added to the training split only, after validation is carved out.
    """
    import keras
    from kmnist import models

    if config.arch not in models.ARCHITECTURES:
        raise ValueError(f"unknown architecture {config.arch!r}; choose one of {', '.join(models.ARCHITECTURES)}")
    if dataset is None:  # before the run dir exists: missing data is a message, not a failed run
        dataset = datasets.load(config.dataset, data_root)
    run_id = runs.validate_run_id(run_id or runs.new_run_id(config))
    run_dir = runs.create_run_dir(run_id, runs_root)
    started = time.time()
    stop = threading.Event()
    status = {"state": "starting", "pid": os.getpid(), "started": now(), "updated": now()}
    files.write_json(run_dir / runs.STATUS_FILE, status)
    restore = _install_signal_handlers(stop)
    try:
        if config.dataset != dataset.name:
            config = config.replace(dataset=dataset.name)
        train_x, train_y = dataset.train.images, dataset.train.labels
        if config.limit:
            train_x, train_y = train_x[: config.limit], train_y[: config.limit]
        num_classes = len(dataset.classes)
        config.framing = measure_framing(train_x, seed=config.seed).to_json()
        files.write_json(run_dir / runs.CONFIG_FILE, config.to_json())
        files.write_json(run_dir / runs.CLASSES_FILE, cls.to_json(dataset.classes))

        keras.utils.set_random_seed(config.seed)
        tr, va = split_train_val(train_y, config.val_fraction, config.seed)
        if config.class_weighting not in ("none", "balanced"):
            raise ValueError(f"unknown class_weighting {config.class_weighting!r}")
        weights = class_weights(train_y[tr], num_classes) if config.class_weighting == "balanced" else None
        fit_x, fit_y = train_x[tr], train_y[tr]
        if extra is not None and len(extra[0]):
            fit_x, fit_y = np.concatenate([fit_x, extra[0]]), np.concatenate([fit_y, extra[1]]).astype(train_y.dtype)
        steps = int(np.ceil(len(fit_x) / config.batch_size))
        with strategy_for(config.strategy).scope():
            model = models.build(config.arch, num_classes)
            if start_from is not None:
                model.set_weights(start_from.get_weights())
            model = models.compile_model(model, config, steps)
        follow = _make_callbacks(run_dir, config, steps, started, stop)
        fit_start = time.time()
        model.fit(make_pipeline(fit_x, fit_y, num_classes, config, True, weights),
                  validation_data=make_pipeline(train_x[va], train_y[va], num_classes, config, False)
                  if len(va) else None,
                  epochs=config.epochs, verbose=verbose, callbacks=[follow, *callbacks],
                  shuffle=False)  # the pipeline shuffles, seeded
        train_seconds = time.time() - fit_start
        state = "cancelled" if stop.is_set() else "completed"
        # Save an uncompiled copy: the optimizer's slots would triple the file for no use at inference.
        inference = models.build(config.arch, num_classes)
        inference.set_weights(model.get_weights())
        inference.save(run_dir / runs.MODEL_FILE)
        files.write_json(run_dir / runs.HISTORY_FILE, follow.history)

        from kmnist.predict import predict_proba
        eval_start = time.time()
        probs = predict_proba(model, dataset.test.images, tta=config.tta)
        eval_seconds = time.time() - eval_start
        y_pred = probs.argmax(axis=1).astype(np.uint8)
        np.save(run_dir / runs.PREDICTIONS_FILE, y_pred)
        rep = report(dataset.test.labels, y_pred, dataset.classes)
        epochs_done = len(follow.history.get("loss", []))
        metrics = rep.to_json() | {
            "state": state, "epochs_done": epochs_done, "train_seconds": train_seconds,
            "wall_seconds": time.time() - started,
            "train_images_per_s": len(fit_x) * max(epochs_done, 1) / max(train_seconds, 1e-9),
            "eval_images_per_s": len(y_pred) / max(eval_seconds, 1e-9),
            "params": int(model.count_params()), "model_bytes": (run_dir / runs.MODEL_FILE).stat().st_size,
            "train_images": int(len(fit_x)), "val_images": int(len(va)), "test_images": int(len(y_pred))}
        files.write_json(run_dir / runs.METRICS_FILE, metrics)
        files.write_json(run_dir / runs.STATUS_FILE, {
            "state": state, "epoch": epochs_done, "epochs": config.epochs, "batch": steps, "batches": steps,
            "elapsed_s": time.time() - started, "eta_s": 0, "updated": now(), "pid": os.getpid(),
            "metrics": {k: metrics[k] for k in ("accuracy", "balanced_accuracy", "macro_f1")},
            "history": follow.history})
        return runs.Run(run_id, run_dir)
    except BaseException as e:
        files.write_json(run_dir / runs.STATUS_FILE, status | {
            "state": "failed", "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(),
            "updated": now()})
        raise
    finally:
        restore()


def _install_signal_handlers(stop: threading.Event):
    """SIGTERM and SIGINT ask for a clean stop after the current batch (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum, frame):
        if stop.is_set():  # a second signal means now
            signal.signal(signum, old[signum] if callable(old[signum]) else signal.SIG_DFL)
            raise KeyboardInterrupt
        stop.set()

    for s in old:
        signal.signal(s, handler)
    return lambda: [signal.signal(s, h) for s, h in old.items()]
