"""Training over several machines: TensorFlow's MultiWorkerMirroredStrategy driven by our own training step.

Keras 3's `model.fit` fails under MultiWorkerMirroredStrategy (a PerReplica batch reaches code that wants a
tensor: TensorFlow issue 72388, keras-team/keras issue 20585), so the multi-worker path keeps the strategy
(its collective all-reduce over gRPC, its variable placement) and replaces only the loop: each step is
`strategy.run` of a replica step (forward, loss over the global batch, the optimizer applying the gradients
all-reduced by the strategy) and `strategy.reduce` of the step's sums. Everything else is the one-machine run:
the same pipeline (each worker takes its slice of every global batch, in the same seeded order on every
worker), the same callbacks (status, heartbeat, cancel), the same run directory, written by the chief alone.

Faults: every collective carries a timeout (`KMNIST_COLLECTIVE_TIMEOUT`, seconds), so a worker that dies or
never joins ends the others within it, each with one ClusterError line; the chief's run is then marked failed.
After every completed epoch the chief keeps the weights and optimizer state in `checkpoint.npz`, and
`--resume` starts a restarted cluster from there (the chief's copy reaches the other workers by all-reduce).
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kmnist import KmnistError, files, runs

TIMEOUT_ENV = "KMNIST_COLLECTIVE_TIMEOUT"
DEFAULT_TIMEOUT_S = 120.0  # covers a slow worker's start (importing TensorFlow, tracing the step) and one step
CHECKPOINT_FILE = "checkpoint.npz"  # the chief's last completed epoch: weights, optimizer state, epoch


class ClusterError(KmnistError, RuntimeError):
    """The cluster cannot train: TF_CONFIG is missing or wrong, or a worker died or never joined."""


@dataclass(frozen=True)
class Worker:
    """This process's place in the cluster that TF_CONFIG describes."""
    task: int  # this worker's index in the cluster's worker list; 0 is the chief, which writes the run
    workers: int  # how many workers train together
    addresses: tuple[str, ...]  # host:port of every worker

    @property
    def chief(self) -> bool:
        return self.task == 0


def worker() -> Worker:
    """This process's place in the cluster, read from TF_CONFIG; a ClusterError says what is wrong with it."""
    raw = os.environ.get("TF_CONFIG", "")
    example = ('TF_CONFIG=\'{"cluster": {"worker": ["host-a:12345", "host-b:12345"]}, '
               '"task": {"type": "worker", "index": 0}}\'')
    if not raw.strip():
        raise ClusterError(f"--strategy multi-worker needs TF_CONFIG naming the cluster and this worker, e.g. {example}")
    try:
        spec = json.loads(raw)
        addresses = tuple(spec["cluster"]["worker"])
        task = spec["task"]
        kind, index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError) as e:
        raise ClusterError(f"TF_CONFIG is not a worker cluster ({type(e).__name__}: {e}); expected e.g. {example}") from None
    if set(spec["cluster"]) != {"worker"} or kind != "worker":
        raise ClusterError("TF_CONFIG may list only workers (worker 0 is the chief), not "
                           f"{', '.join(sorted(set(spec['cluster']) - {'worker'}) or [kind])}")
    if not 0 <= index < len(addresses):
        raise ClusterError(f"TF_CONFIG task index {index} is outside the {len(addresses)} workers listed")
    return Worker(index, len(addresses), addresses)


@dataclass(frozen=True)
class Part:
    """What a worker other than the chief did: it trained with the cluster and wrote no run (the chief did)."""
    worker: int  # its index
    workers: int  # the cluster's size
    run_id: str  # the run the chief writes
    state: str  # completed or cancelled (a failure is a ClusterError)
    epochs_done: float  # as the chief counts them
    weights_sha256: str  # digest() of its final weights: the same on every worker

    def to_json(self) -> dict:
        return dict(self.__dict__)


def reopen(run_id: str, config, root: Path | None = None) -> Path:
    """The chief's run directory to resume: it exists, did not complete, and was trained with the same config."""
    from kmnist.config import TrainConfig
    path = Path(root or runs.runs_dir()) / runs.validate_run_id(run_id)
    status = files.read_json(path / runs.STATUS_FILE, {}) or {}
    saved = files.read_json(path / runs.CONFIG_FILE)
    if not isinstance(saved, dict) or not (path / CHECKPOINT_FILE).is_file():
        raise ClusterError(f"nothing to resume in {path}: no run with a completed epoch ({CHECKPOINT_FILE}) there")
    if status.get("state") == "completed":
        raise ClusterError(f"run {run_id!r} completed already; nothing to resume")
    if runs.judge(status) in runs.ACTIVE_STATES:
        raise ClusterError(f"run {run_id!r} is still training (pid {status.get('pid')}); stop it before resuming")
    if TrainConfig.from_json(saved) != config:
        differ = sorted(k for k, v in config.to_json().items() if saved.get(k) != v)
        raise ClusterError(f"run {run_id!r} was trained with other settings ({', '.join(differ)}); resume it "
                           "with the same command, or start a new run")
    return path


def timeout_s() -> float:
    """Seconds any collective may wait for the other workers before the cluster gives up."""
    raw = os.environ.get(TIMEOUT_ENV, "")
    try:
        value = float(raw) if raw.strip() else DEFAULT_TIMEOUT_S
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ClusterError(f"{TIMEOUT_ENV} must be a positive number of seconds, not {raw!r}")
    return value


# Runs beside a worker while its cluster forms: TensorFlow waits for the other workers inside a call that
# holds the interpreter lock, so no thread of the worker itself can give up. Its stdin closes once the
# cluster formed (or the worker is gone); else it prints the one line and ends the worker.
WATCHDOG = """import os, select, signal, sys
pid, limit, message = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
if not select.select([sys.stdin], [], [], limit)[0]:
    print(message, file=sys.stderr, flush=True)
    os.kill(pid, signal.SIGKILL)  # SIGTERM waits for the same lock
"""


@functools.cache
def strategy():
    """MultiWorkerMirroredStrategy over TF_CONFIG's workers (one per process), every collective bounded by
    `timeout_s()`.

    Making it waits, with no bound of TensorFlow's, until every worker is up; a watchdog process ends this
    worker with one line if they have not all joined within the timeout. train() makes it before the run
    directory, so a cluster that never formed leaves no run behind.
    """
    import tensorflow as tf
    where, limit = worker(), timeout_s()
    others = ", ".join(a for i, a in enumerate(where.addresses) if i != where.task)
    message = (f"error: worker {where.task} of {where.workers}: the other workers ({others}) did not all join "
               f"within {limit:.0f} s ({TIMEOUT_ENV}); start every worker with the same TF_CONFIG cluster and "
               "its own task index")
    watchdog = subprocess.Popen([sys.executable, "-c", WATCHDOG, str(os.getpid()), str(limit), message],
                                stdin=subprocess.PIPE)
    try:
        options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=limit)
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    finally:
        watchdog.stdin.close()
        watchdog.wait()


def batches(images: int, batch_size: int, workers: int) -> int:
    """Steps per epoch: global batches of `batch_size`; a last batch too small to give every worker an image
    is left out (at most workers - 1 images an epoch), since a worker cannot step on an empty batch."""
    full, rest = divmod(images, batch_size)
    return full + (1 if rest >= workers else 0)


def digest(model) -> str:
    """SHA-256 of a model's weights, to show that every worker ended with the same model."""
    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w, np.float32).tobytes())
    return h.hexdigest()


def _lost(e: Exception, where: Worker, epoch: int) -> ClusterError:
    """The one line a worker ends with when the collectives fail: another worker died, hung or never joined."""
    import tensorflow as tf
    why = {tf.errors.UnavailableError: "a worker's connection was lost",
           tf.errors.DeadlineExceededError: f"no answer from a worker within {timeout_s():.0f} s ({TIMEOUT_ENV})"}
    return ClusterError(
        f"worker {where.task} of {where.workers} stopped in epoch {epoch + 1}: "
        f"{why.get(type(e), f'the collectives failed ({type(e).__name__})')}, so another worker died or hung. "
        "Restart every worker with --resume and the same --run-id to continue from the last completed epoch.")


class Loop:
    """The training loop of one worker: steps, validation, callbacks, checkpoints."""

    def __init__(self, model, strategy, data, where: Worker, run_dir: Path, follow, callbacks, make_pipeline):
        import keras
        import tensorflow as tf
        self.model, self.strategy, self.data, self.where, self.run_dir = model, strategy, data, where, run_dir
        config, n = data.config, len(data.classes)
        part = (where.task, where.workers)
        self.steps = batches(len(data.train.labels), config.batch_size, where.workers)
        self.val_steps = batches(len(data.val.labels), config.batch_size, where.workers)
        self.train_ds = make_pipeline(data.train.images, data.train.labels, n, config, True, data.weights,
                                      part=part).take(self.steps)
        self.val_ds = (make_pipeline(data.val.images, data.val.labels, n, config, False, part=part).take(self.val_steps)
                       if self.val_steps else None)
        self.follow = follow
        self.callbacks = keras.callbacks.CallbackList([follow, *callbacks], model=model, epochs=config.epochs,
                                                      steps=self.steps, verbose=0)
        self.loss = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing, reduction=None)
        with strategy.scope():
            model.optimizer.build(model.trainable_variables)
        self.state = [*model.weights, *model.optimizer.variables]  # what a checkpoint holds, in a fixed order
        self.train_step = tf.function(self._train_step)
        self.val_step = tf.function(self._val_step)

    # Replica steps: each returns per-worker sums, which strategy.reduce adds over the workers.

    def _sums(self, y, probs, w, loss):
        import tensorflow as tf
        correct = tf.cast(tf.equal(tf.argmax(probs, 1), tf.argmax(y, 1)), tf.float32)
        return tf.stack([tf.reduce_sum(loss), tf.reduce_sum(w * correct), tf.reduce_sum(w),
                         tf.cast(tf.shape(y)[0], tf.float32)])

    def _train_step(self, batch, stop):
        import tensorflow as tf

        def replica(batch, stop):
            x, y, *rest = batch
            ctx = tf.distribute.get_replica_context()
            w = rest[0] if rest else tf.ones(tf.shape(y)[0])
            global_n = ctx.all_reduce("sum", tf.cast(tf.shape(y)[0], tf.float32))
            with tf.GradientTape() as tape:
                probs = self.model(x, training=True)
                loss = self.loss(y, probs) * w
                # Keras' sum-over-batch loss of the global batch; the optimizer sums the workers' gradients.
                objective = tf.reduce_sum(loss) / global_n
                if self.model.losses:
                    objective += tf.nn.scale_regularization_loss(tf.add_n(self.model.losses))
            grads = tape.gradient(objective, self.model.trainable_variables)
            self.model.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
            return tf.concat([self._sums(y, tf.cast(probs, tf.float32), w, loss), stop], 0)

        return self.strategy.reduce("sum", self.strategy.run(replica, args=(batch, stop)), axis=None)

    def _val_step(self, batch):
        import tensorflow as tf

        def replica(batch):
            x, y = batch
            probs = tf.cast(self.model(x, training=False), tf.float32)
            return self._sums(y, probs, tf.ones(tf.shape(y)[0]), self.loss(y, probs))

        return self.strategy.reduce("sum", self.strategy.run(replica, args=(batch,)), axis=None)

    def share(self, values):
        """The chief's `values` on every worker: an all-reduce sum to which the others add zeros.

        Called eagerly (strategy.run traces it itself): inside a tf.function these all-reduces fail to place
        their results."""
        import tensorflow as tf

        def replica(values):
            ctx = tf.distribute.get_replica_context()
            return [ctx.all_reduce("sum", v) for v in values]

        return self.strategy.run(replica, args=(values,))

    def _agree(self, stop: threading.Event) -> bool:
        """Whether any worker asked to stop: one collective, so every worker takes the same branch."""
        import tensorflow as tf
        return bool(np.asarray(self.share([tf.constant([float(stop.is_set())])])[0]).sum() > 0)

    @staticmethod
    def _logs(sums, prefix: str = "") -> dict:
        loss, correct, weight, count = (float(s) for s in sums[:4])
        return {f"{prefix}accuracy": correct / max(weight, 1e-12), f"{prefix}loss": loss / max(count, 1e-12)}

    # Checkpoints: the chief writes, everyone reads the chief's copy.

    def save_checkpoint(self, epoch: int, history: dict) -> None:
        """After a completed epoch: every worker reads its state (reads may be collectives), the chief writes it."""
        arrays = [np.asarray(v.numpy()) for v in self.state]
        if self.where.chief:
            with files.atomic_open(self.run_dir / CHECKPOINT_FILE, "wb") as f:
                np.savez(f, epoch=np.int64(epoch), history=json.dumps(history),
                         **{f"v{i}": a for i, a in enumerate(arrays)})

    def restore_checkpoint(self) -> tuple[int, dict]:
        """Epochs done and the history so far, from the chief's checkpoint, with every worker's state set from it."""
        import tensorflow as tf
        arrays, epoch, history = [np.zeros(v.shape, v.dtype) for v in self.state], 0, {}
        if self.where.chief:
            path = self.run_dir / CHECKPOINT_FILE
            if not path.is_file():
                raise ClusterError(f"nothing to resume: {path} is missing (no epoch of this run completed)")
            with np.load(path) as saved:
                if len(saved.files) - 2 != len(arrays):
                    raise ClusterError(f"{path} holds another model's state ({len(saved.files) - 2} arrays, "
                                       f"this model has {len(arrays)})")
                arrays = [saved[f"v{i}"] for i in range(len(arrays))]
                epoch, history = int(saved["epoch"]), json.loads(str(saved["history"]))
        shared = self.share([tf.constant(a) for a in [*arrays, np.array([epoch], np.int64)]])
        for v, a in zip(self.state, shared[:-1]):
            v.assign(a)
        return int(shared[-1].numpy()[0]), history

    def run(self, stop: threading.Event, resume: bool) -> float:
        """Train the configured epochs (after the checkpoint's, when resuming); returns the loop's seconds."""
        import tensorflow as tf
        config, follow = self.data.config, self.follow
        first, epoch = 0, 0
        try:
            if resume:
                first, follow.history = self.restore_checkpoint()
            start = time.time()
            self.callbacks.on_train_begin()
            for _ in range(first):  # advance the seeded reshuffles to the epoch resumed, as if it had run
                iter(self.train_ds)
            for epoch in range(first, config.epochs):
                self.callbacks.on_epoch_begin(epoch)
                sums = np.zeros(5)
                for step, batch in enumerate(self.train_ds):
                    sums += self.train_step(batch, tf.constant([float(stop.is_set())])).numpy()
                    self.callbacks.on_train_batch_end(step, self._logs(sums))
                    if sums[4] > 0 or self.model.stop_training:  # a cancel on any worker stops them all
                        stop.set()
                        self.model.stop_training = True  # the flag reaches the others with the next step's sums
                    if sums[4] > 0:
                        break
                logs = self._logs(sums)
                if self._agree(stop):  # a cancel seen in an epoch's last step: every worker stops here too
                    stop.set()
                if not stop.is_set() and self.val_ds is not None:
                    val = np.zeros(4)
                    for step, batch in enumerate(self.val_ds):
                        val += self.val_step(batch).numpy()
                        self.callbacks.on_test_batch_end(step)
                    logs |= self._logs(val, "val_")
                self.callbacks.on_epoch_end(epoch, logs)
                if stop.is_set():
                    break
                self.save_checkpoint(epoch + 1, follow.history)
            if not stop.is_set():  # complete: nothing left to resume
                (self.run_dir / CHECKPOINT_FILE).unlink(missing_ok=True)
            if config.ema:  # as Keras' fit ends: the averaged weights become the model's
                self.model.optimizer.finalize_variable_values(self.model.trainable_variables)
            self.callbacks.on_train_end()
            return time.time() - start
        except tf.errors.OpError as e:
            raise _lost(e, self.where, epoch) from None


def fit(model, strategy, data, where: Worker, run_dir: Path, follow, callbacks, stop: threading.Event,
        resume: bool, make_pipeline) -> float:
    """Train `model` (built and compiled in `strategy`'s scope) with the other workers; returns the seconds.

    `make_pipeline` is train.make_pipeline, passed in: one machine and a cluster feed the same batches."""
    if strategy.num_replicas_in_sync != where.workers:
        raise ClusterError(f"{strategy.num_replicas_in_sync} replicas for {where.workers} workers: run one worker "
                           "process per device (e.g. CUDA_VISIBLE_DEVICES=N for worker N on a GPU box)")
    return Loop(model, strategy, data, where, run_dir, follow, callbacks, make_pipeline).run(stop, resume)
