"""A training run: data split, model, fit, and a run directory another process can follow and load."""
from __future__ import annotations

import signal
import tempfile
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from kmnist import classes as cls, files
from kmnist import datasets, distributed, runs, unknown
from kmnist.datasets import split_train_val
from kmnist.config import TrainConfig
from kmnist.evaluate import VALIDATION_KEYS, report, validation_scores
from kmnist.export import Images, export_or_record
from kmnist.preprocess import measure_framing, to_input

STATUS_EVERY = 0.5  # seconds between status rewrites during an epoch


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Inverse-frequency weights with mean 1 over the training images."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    present = max(int((counts > 0).sum()), 1)
    weights = np.where(counts > 0, len(labels) / (present * np.maximum(counts, 1)), 0.0)
    return weights.astype(np.float32)


def strategy_for(name: str):
    """The tf.distribute strategy named by TrainConfig.strategy (checked there: one of config.STRATEGIES)."""
    import tensorflow as tf
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        # Without GPUs MirroredStrategy() would take CPU:0 alone; replicate over every logical CPU
        # device instead, so a CPU split into logical devices (as the tests do) really runs replicas.
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(None if tf.config.list_logical_devices("GPU") else cpus)
    from kmnist import distributed  # "multi-worker": TrainConfig allows no other name
    return distributed.strategy()


def make_pipeline(images, labels, num_classes, config: TrainConfig, training: bool, weights=None,
                  part: tuple[int, int] = (0, 1)):
    """A tf.data pipeline of (image, one-hot[, weight]) batches; augmentation only when training.

    `part` (k, n): worker k of n gathers and warps only its slice of every batch (the order is the same on
    every worker, so the n slices make up the batch one machine would take), with warp seeds of its own.

    The same `config.seed` gives the same batches, epoch after epoch: each epoch's order is a seeded
    reshuffle of image positions, and each batch's warp draws from its own stateless seed, taken from a
    seeded stream that starts anew (and differently) every epoch. Batches are gathered whole from the
    arrays by position, so the shuffle buffer holds integers, not images.
    """
    import tensorflow as tf
    from kmnist.augment import augmenter, cutmixer
    x = tf.constant(to_input(images))
    parts = [tf.constant(np.eye(num_classes, dtype=np.float32)[labels])]
    if weights is not None:
        parts.append(tf.constant(weights[labels]))
    ds = tf.data.Dataset.range(len(images))
    if training:
        ds = ds.shuffle(len(images), seed=config.seed, reshuffle_each_iteration=True)
    ds = ds.batch(config.batch_size)
    k, n = part
    if n > 1:
        ds = ds.map(lambda at: at[tf.size(at) * k // n: tf.size(at) * (k + 1) // n])
    if training and (config.augment > 0 or config.cutmix > 0):
        warp = augmenter(config.augment, config.elastic) if config.augment > 0 else None
        mix = cutmixer(config.cutmix) if config.cutmix > 0 else None

        def augment(at, seed):
            if n > 1:
                seed = tf.random.experimental.stateless_fold_in(seed, k)
            images, onehots = tf.gather(x, at), tf.gather(parts[0], at)
            if warp is not None:
                images = warp(images, seed)
            if mix is not None:  # its own stream: the warp's draws stay what they were without CutMix
                images, onehots = mix(images, onehots, tf.random.experimental.stateless_fold_in(seed, 1))
            return (images, onehots, *(tf.gather(p, at) for p in parts[1:]))

        seeds = tf.data.Dataset.random(seed=config.seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip(ds, seeds).map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.map(lambda at: (tf.gather(x, at), *(tf.gather(p, at) for p in parts)))
    return ds.prefetch(tf.data.AUTOTUNE)


def _make_callbacks(run_dir: Path, config: TrainConfig, steps: int, started: float, stop: threading.Event):
    import keras

    class Follow(keras.callbacks.Callback):
        """Rewrites status.json as training goes, and stops after the batch a cancel was asked in."""

        def __init__(self):
            super().__init__()
            self.history: dict[str, list[float]] = {}
            self.epoch = 0
            self.batch = 0  # batches done in the current epoch
            self.logs: dict = {}
            self.last_write = 0.0

        @property
        def epochs_done(self) -> float:
            """Whole epochs plus the share of the current one: a cancel after 10 of 43 batches is 0.233."""
            done = round((self.epoch * steps + self.batch) / steps, 3)
            return int(done) if done.is_integer() else done

        def write(self, state: str = "running", logs: dict | None = None, final: dict | None = None):
            """status.json, the one writer of its shape; `final`: a finished run's scores, shown instead of the
            running epoch's metrics (nothing is left to do then)."""
            done = self.epoch * steps + self.batch
            elapsed = time.time() - started
            eta = 0 if final is not None else elapsed / done * (config.epochs * steps - done) if done else None
            self.logs = logs if logs is not None else self.logs
            files.write_json(run_dir / runs.STATUS_FILE, {
                "state": state, "epoch": self.epoch + 1, "epochs": config.epochs, "batch": self.batch,
                "batches": steps, "epochs_done": self.epochs_done, "elapsed_s": elapsed, "eta_s": eta,
                "updated": now(), **runs.heartbeat(),
                "metrics": final if final is not None else {k: float(v) for k, v in self.logs.items()},
                "history": self.history})
            self.last_write = time.time()

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch, self.batch, self.logs = epoch, 0, {}
            self.write()

        def on_train_batch_end(self, batch, logs=None):
            self.batch = batch + 1
            if stop.is_set() or (run_dir / runs.CANCEL_FILE).exists():
                stop.set()
                self.model.stop_training = True
            if time.time() - self.last_write > STATUS_EVERY:
                self.write(logs=logs)

        def on_test_batch_end(self, batch, logs=None):
            if time.time() - self.last_write > STATUS_EVERY:
                self.write()  # validation: progress is unchanged, the heartbeat goes on

        def on_epoch_end(self, epoch, logs=None):
            if self.batch == steps:  # the history holds whole epochs; a cancelled one's share is in epochs_done
                for k, v in (logs or {}).items():
                    self.history.setdefault(k, []).append(float(v))
                files.write_json(run_dir / runs.HISTORY_FILE, self.history)
            self.write(logs=logs)

    return Follow()


@dataclass
class Prepared:
    """A run's data, split and ready to fit."""
    config: TrainConfig  # the config as run (naming the dataset as loaded)
    classes: list[cls.ClassInfo]  # the class table
    train: datasets.Split  # images the model fits
    val: datasets.Split  # held out of the fit, for the per-epoch and final validation scores
    test: datasets.Split  # reported only, never used for a choice
    weights: np.ndarray | None  # per-class loss weights, None when unweighted

    @property
    def steps(self) -> int:
        """Batches per epoch."""
        return int(np.ceil(len(self.train.labels) / self.config.batch_size))


def train(config: TrainConfig, dataset: datasets.Dataset | None = None, callbacks: Sequence = (),
          runs_root: Path | None = None, data_root: Path | None = None, run_id: str | None = None,
          verbose: int = 0, start_from=None, extra: tuple[np.ndarray, np.ndarray] | None = None,
          resume: bool = False) -> runs.Run | distributed.Part:
    """Train a model as `config` says and leave a complete run directory, also when cancelled or failed.

    Fine-tuning (kmnist.finetune) passes `start_from`, a model whose weights training starts from, and
    `extra`, (images, labels) added to the training split only, after validation is carved out.
    With `--strategy multi-worker` only the chief (worker 0) writes the run; another worker trains in a
    scratch directory it deletes, and returns its `distributed.Part`. `resume` continues the multi-worker run
    `run_id` from its last completed epoch.
    """
    where = distributed.worker() if config.strategy == "multi-worker" else None  # TF_CONFIG checked first
    if dataset is None:  # before the run dir exists: missing data is a message, not a failed run
        dataset = datasets.load(config.dataset, data_root)
    if where:
        distributed.strategy()  # the cluster forms (or this worker gives up) before there is a run
    if resume and (where is None or not run_id):
        raise distributed.ClusterError("--resume continues a multi-worker run: it needs --strategy multi-worker "
                                       "and --run-id naming the run")
    run_id = runs.validate_run_id(run_id or runs.new_run_id(config))
    scratch = tempfile.TemporaryDirectory(prefix=f"kmnist-worker{where.task}-") if where and not where.chief else None
    if scratch:  # not a run: deleted when this worker ends
        run_dir = runs.create_run_dir(run_id, Path(scratch.name))
    elif resume:
        run_dir = distributed.reopen(run_id, config.replace(dataset=dataset.name), runs_root)
    else:
        run_dir = runs.create_run_dir(run_id, runs_root)
    started = time.time()
    stop = threading.Event()
    status = {"state": "starting", "started": now(), "updated": now(), **runs.heartbeat()}
    files.write_json(run_dir / runs.STATUS_FILE, status)
    restore = _install_signal_handlers(stop)
    try:
        data = prepare(config, dataset, run_dir, extra)
        model, progress, train_seconds = fit(data, run_dir, started, stop, callbacks, verbose, start_from, resume)
        if scratch:  # the chief saves and scores the run
            return distributed.Part(where.task, where.workers, run_id, "cancelled" if stop.is_set() else "completed",
                                    progress.epochs_done, distributed.digest(model))
        saved = save(run_dir, model, data, progress.history, data_root)  # scored as saved: plain layers, float32
        score(run_dir, saved, data, progress, "cancelled" if stop.is_set() else "completed", train_seconds, started)
        return runs.Run(run_id, run_dir)
    except BaseException as e:
        try:
            files.write_json(run_dir / runs.STATUS_FILE, status | {
                "state": "failed", "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(),
                "updated": now()})
        except OSError:
            pass  # not even that fits (a full disk): the status says running, and runs.judge reads it interrupted
        raise
    finally:
        restore()
        if scratch:
            scratch.cleanup()


def prepare(config: TrainConfig, dataset: datasets.Dataset, run_dir: Path,
            extra: tuple[np.ndarray, np.ndarray] | None = None) -> Prepared:
    """Split the data and write what a reader needs before the first epoch: config, class table, framing.

    `extra` (images, labels) joins the training split only, after validation is carved out.
    """
    config = config.replace(dataset=dataset.name)
    images, labels = dataset.train.images, dataset.train.labels
    if config.limit:
        images, labels = images[: config.limit], labels[: config.limit]
    tr, va = split_train_val(labels, config.val_fraction, config.seed)
    weights = class_weights(labels[tr], len(dataset.classes)) if config.class_weighting == "balanced" else None
    files.write_json(run_dir / runs.CONFIG_FILE, config.to_json())
    files.write_json(run_dir / runs.CLASSES_FILE, cls.to_json(dataset.classes))
    files.write_json(run_dir / runs.FRAMING_FILE, measure_framing(images, seed=config.seed).to_json())
    fit_x, fit_y = images[tr], labels[tr]
    if extra is not None and len(extra[0]):
        fit_x, fit_y = np.concatenate([fit_x, extra[0]]), np.concatenate([fit_y, extra[1]]).astype(labels.dtype)
    return Prepared(config, dataset.classes, datasets.Split(fit_x, fit_y),
                    datasets.Split(images[va], labels[va]), dataset.test, weights)


def fit(data: Prepared, run_dir: Path, started: float, stop: threading.Event, callbacks: Sequence = (),
        verbose: int = 0, start_from=None, resume: bool = False):
    """Build and fit the model (from `start_from`'s weights when given); returns it, its progress (history, epochs
    and batches done) and the fit's seconds."""
    import keras
    from kmnist import models
    config, num_classes = data.config, len(data.classes)
    strategy = strategy_for(config.strategy)  # first: a multi-worker strategy must precede any TensorFlow op
    keras.utils.set_random_seed(config.seed)
    with strategy.scope():
        model = models.build(config.arch, num_classes)
        if start_from is not None:
            model.set_weights(start_from.get_weights())
        model = models.compile_model(model, config, data.steps)
    if config.strategy == "multi-worker":  # Keras' fit fails there: our loop, the same callbacks
        where = distributed.worker()
        steps = distributed.batches(len(data.train.labels), config.batch_size, where.workers)
        follow = _make_callbacks(run_dir, config, steps, started, stop)
        seconds = distributed.fit(model, strategy, data, where, run_dir, follow, callbacks, stop, resume,
                                  make_pipeline)
        return model, follow, seconds
    follow = _make_callbacks(run_dir, config, data.steps, started, stop)
    fit_start = time.time()
    model.fit(make_pipeline(data.train.images, data.train.labels, num_classes, config, True, data.weights),
              validation_data=make_pipeline(data.val.images, data.val.labels, num_classes, config, False)
              if len(data.val.labels) else None,
              epochs=config.epochs, verbose=verbose, callbacks=[follow, *callbacks],
              shuffle=False)  # the pipeline shuffles, seeded
    return model, follow, time.time() - fit_start


def save(run_dir: Path, model, data: Prepared, history: dict, data_root: Path | None = None):
    """The trained model, its "none of these" rule, its exports and its history, each written under a temporary
    name and renamed into place; returns the saved model (the fitted one may be a fused-BatchNorm, bfloat16
    training copy). `data_root` is where the rule looks for MNIST digits among its outliers."""
    from kmnist import models
    # Save an uncompiled copy: the optimizer's slots would triple the file for no use at inference.
    inference = models.build(data.config.arch, len(data.classes))
    inference.set_weights(model.get_weights())
    with files.atomic_path(run_dir / runs.MODEL_FILE, suffix=".keras") as tmp:  # Keras wants the .keras suffix
        inference.save(tmp)
    # The rule before the export, which puts its score into model.onnx; a failure of either is recorded, not raised
    unknown.calibrate_or_record(runs.Run(run_dir.name, run_dir), inference, data.train, data.val, data_root)
    export_or_record(inference, run_dir, Images(data.train.images, data.test.images, data.test.labels,
                                                data.config.dataset))
    files.write_json(run_dir / runs.HISTORY_FILE, history)
    return inference


def score(run_dir: Path, model, data: Prepared, progress, state: str, train_seconds: float,
          started: float) -> None:
    """Validation and test scores into metrics.json, test predictions beside them, and the final status."""
    from kmnist.predict import predict_proba
    config = data.config
    val = (validation_scores(predict_proba(model, data.val.images, tta=config.tta), data.val.labels,
                             config.label_smoothing) if len(data.val.labels) else dict.fromkeys(VALIDATION_KEYS))
    eval_start = time.time()
    y_pred = predict_proba(model, data.test.images, tta=config.tta).argmax(axis=1).astype(np.uint8)
    eval_seconds = time.time() - eval_start
    with files.atomic_open(run_dir / runs.PREDICTIONS_FILE, "wb") as f:
        np.save(f, y_pred)
    epochs_done = progress.epochs_done  # a cancel mid-epoch counts the batches it did: 10 of 43 is 0.233
    metrics = report(data.test.labels, y_pred, data.classes).to_json() | val | {
        "state": state, "epochs_done": epochs_done, "batches_done": progress.epoch * data.steps + progress.batch,
        "train_seconds": train_seconds,
        "wall_seconds": time.time() - started,
        "train_images_per_s": len(data.train.labels) * max(epochs_done, 1) / max(train_seconds, 1e-9),
        "eval_images_per_s": len(y_pred) / max(eval_seconds, 1e-9),
        "params": int(model.count_params()), "model_bytes": (run_dir / runs.MODEL_FILE).stat().st_size,
        "train_images": len(data.train.labels), "val_images": len(data.val.labels), "test_images": len(y_pred)}
    files.write_json(run_dir / runs.METRICS_FILE, metrics)
    progress.write(state, final={k: metrics[k] for k in ("accuracy", "balanced_accuracy", "macro_f1")})


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
