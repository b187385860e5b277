"""The runs registry: where runs live, reading one back, listing them, and the active-model pointer.

It is also the one judge of a run's state: a run whose status says "running" but whose training process
is gone (killed, machine restarted) or whose heartbeat stopped reads "interrupted" everywhere (CLI,
pages, jobs). And the one gate to the active model: a run is activated only when its model loads and
matches its class table, and a model that breaks later is replaced by the shipped default with one
line saying why.
"""
from __future__ import annotations

import json
import os
import re
import socket
import time
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path

from kmnist import KmnistError, classes as cls
from kmnist.config import TrainConfig
from kmnist.evaluate import Report
from kmnist.files import ROOT, atomic_open, read_json
from kmnist.preprocess import DEFAULT_FRAMING, Framing

SHIPPED = ROOT / "assets" / "runs"  # runs committed with the project, read-only
DEFAULT_POINTER = SHIPPED / "DEFAULT"  # the shipped default model's run id
RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,119}")  # used with fullmatch: no trailing newline
MODEL_FILE, CONFIG_FILE, CLASSES_FILE = "model.keras", "config.json", "classes.json"
HISTORY_FILE, METRICS_FILE, STATUS_FILE = "history.json", "metrics.json", "status.json"
PREDICTIONS_FILE, CANCEL_FILE, FRAMING_FILE = "test_predictions.npy", "CANCEL", "framing.json"
ACTIVE_STATES = ("starting", "running")  # states of a run whose training process should still be alive
# A training rewrites its heartbeat every 0.5 s while it fits and validates, but not while it saves and
# scores the test set (minutes for K49 on a slow machine): only a heartbeat older than this means dead.
STALE_S = 900.0


class RunNotFoundError(KmnistError, LookupError):
    """No run has that id."""


class RunError(KmnistError, ValueError):
    """A run id is invalid, or a run's files are unreadable or inconsistent; the message names the run."""


class ModelError(RunError):
    """A run's model file is missing, truncated, unloadable or does not match the run's class table."""


class RunExistsError(KmnistError, FileExistsError):
    """A run with that id exists already; runs are never overwritten."""


def runs_dir() -> Path:
    """Where new runs are written: $KMNIST_RUNS_DIR, else runs/ beside the package."""
    return Path(os.environ.get("KMNIST_RUNS_DIR") or ROOT / "runs").expanduser()


def validate_run_id(run_id: str) -> str:
    """The id itself when it is safe as a directory name; checked before any path is built from it."""
    if not isinstance(run_id, str) or not RUN_ID_RE.fullmatch(run_id) or ".." in run_id:
        shown = repr(run_id) if len(str(run_id)) <= 60 else f"of {len(run_id)} characters"
        raise RunError(f"invalid run id {shown}: use 1 to 120 letters, digits, '.', '_' and '-', "
                       "starting with a letter or digit")
    return run_id


def new_run_id(config: TrainConfig) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{config.dataset}-{config.arch}-{stamp}"


def create_run_dir(run_id: str, root: Path | None = None) -> Path:
    """A fresh, empty run directory; an existing run is never overwritten."""
    validate_run_id(run_id)
    root = Path(root or runs_dir())
    root.mkdir(parents=True, exist_ok=True)
    path = root / run_id
    try:
        path.mkdir()
    except FileExistsError:
        raise RunExistsError(f"run {run_id!r} already exists in {root}; runs are never overwritten") from None
    return path


def proc_stat(pid: int) -> tuple[str, int] | None:
    """Process state letter and start time (clock ticks since boot) from /proc, None where unreadable."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the command name may hold spaces and parentheses
    return fields[0], int(fields[19])


def pid_alive(pid: int | None, proc_start: int | None = None) -> bool:
    """Whether the process still runs; proc_start guards against a recycled pid."""
    if not pid:
        return False
    try:
        if os.waitpid(pid, os.WNOHANG)[0]:  # reap our own finished child, else it lingers as a zombie
            return False
    except ChildProcessError:
        pass  # not our child: someone else reaps it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, under another user
    stat = proc_stat(pid)
    if stat is None:
        return True
    return stat[0] != "Z" and (proc_start is None or stat[1] == proc_start)


def heartbeat() -> dict:
    """The fields a training process puts in every status write, by which `judge` tells whether it lives."""
    stat = proc_stat(os.getpid())
    return {"pid": os.getpid(), "proc_start": stat[1] if stat else None, "host": socket.gethostname(),
            "heartbeat": time.time()}


def trainer_alive(status: dict, pid: int | None = None, proc_start: int | None = None) -> bool:
    """Whether the process training a run still lives: its pid on this machine, and a heartbeat that is not stale.

    `pid` and `proc_start` (from a job record) stand in where the status has none yet.
    """
    beat = status.get("heartbeat")
    if isinstance(beat, (int, float)) and time.time() - beat > STALE_S:
        return False  # stopped reporting: the machine slept or stopped, or the pid now belongs to another process
    if status.get("host", socket.gethostname()) != socket.gethostname():
        return beat is not None  # another machine's process: its heartbeat is all there is to go by
    return pid_alive(status.get("pid") or pid, status.get("proc_start") or proc_start)


def judge(status: dict, pid: int | None = None, proc_start: int | None = None) -> str:
    """A run's state as it really stands: "running" or "starting" with no live trainer reads "interrupted"."""
    state = status.get("state") or "unknown"
    if state in ACTIVE_STATES and not trainer_alive(status, pid, proc_start):
        return "interrupted"
    return state


def stopped_at(status: dict) -> str:
    """Where a training stands or stopped, e.g. "epoch 2 of 12, batch 10 of 43"."""
    epoch, epochs = status.get("epoch", 0), status.get("epochs", "?")
    batch, batches = status.get("batch"), status.get("batches")
    inside = f", batch {batch} of {batches}" if batch and batches and batch < batches else ""
    return f"epoch {epoch} of {epochs}{inside}"


def _strict_json(path: Path, what: str, run_id: str):
    """A run file that must be there and be valid JSON; otherwise a RunError naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"run {run_id!r} has no {what} ({path})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunError(f"the {what} of run {run_id!r} is corrupt ({path}: {e})") from None


@dataclass
class Run:
    """One training run on disk, readable without anything else."""
    id: str  # run id, also the directory name
    path: Path  # the run directory
    shipped: bool = False  # committed under assets/ (read-only)

    @cached_property
    def config(self) -> TrainConfig:
        return self._parsed(CONFIG_FILE, TrainConfig.from_json, "a training config")

    @cached_property
    def classes(self) -> list[cls.ClassInfo]:
        return self._parsed(CLASSES_FILE, cls.from_json, "a class table")

    def _parsed(self, name: str, parse, what: str):
        """A run file that must be there, be valid JSON and parse; otherwise a RunError naming it."""
        path = self.path / name
        data = _strict_json(path, name, self.id)
        try:
            return parse(data)
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            raise RunError(f"the {name} of run {self.id!r} is not {what} ({path}: {e})") from None

    @cached_property
    def framing(self) -> Framing:
        """How its training images were framed; runs made before framing.json kept it in config.json."""
        framing = read_json(self.path / FRAMING_FILE) or read_json(self.path / CONFIG_FILE, {}).get("framing")
        return Framing(**framing) if framing else DEFAULT_FRAMING

    @property
    def status(self) -> dict:
        status = read_json(self.path / STATUS_FILE, {})
        return status if isinstance(status, dict) else {}

    @property
    def state(self) -> str:
        """completed, cancelled, failed, starting, running, or interrupted (its training process is gone)."""
        return judge(self.status)

    @property
    def history(self) -> dict:
        return read_json(self.path / HISTORY_FILE, {}) or {}

    @property
    def metrics(self) -> dict:
        return read_json(self.path / METRICS_FILE, {}) or {}

    @property
    def report(self) -> Report | None:
        m = self.metrics
        return Report.from_json(m) if "per_class" in m else None

    @property
    def has_model(self) -> bool:
        return (self.path / MODEL_FILE).is_file()

    def check_model_file(self) -> Path:
        """The path of the run's model.keras once it is known to be whole (without importing Keras); else ModelError."""
        path = self.path / MODEL_FILE
        if not path.is_file():
            state = self.state
            why = (f"its training is {state} at {stopped_at(self.status)}" if state in ("interrupted", *ACTIVE_STATES)
                   else "it has no training status" if state == "unknown" else f"its training is {state}")
            raise ModelError(f"run {self.id!r} has no {MODEL_FILE} ({why})")
        try:
            with zipfile.ZipFile(path) as z:
                broken = z.testzip()  # reads every member: a cut-off file fails here, not deep inside Keras
        except (zipfile.BadZipFile, EOFError, OSError) as e:
            raise ModelError(f"the {MODEL_FILE} of run {self.id!r} is truncated or not a Keras model "
                             f"({path.stat().st_size:,} bytes: {e})") from None
        if broken is not None:
            raise ModelError(f"the {MODEL_FILE} of run {self.id!r} is corrupt (damaged part: {broken})")
        return path

    def load_model(self):
        """The run's Keras model, checked: it loads, and it has one output per class of the run's table."""
        path = self.check_model_file()
        import keras  # deferred: listing runs should not pay for TensorFlow
        try:
            model = keras.models.load_model(path, compile=False)
        except Exception as e:  # noqa: BLE001 - the file is outside input: any failure to read it is its fault
            raise ModelError(f"the {MODEL_FILE} of run {self.id!r} cannot be loaded "
                             f"({type(e).__name__}: {str(e)[:200]})") from e
        outputs = model.output_shape[-1] if isinstance(model.output_shape, tuple) else None
        if outputs != len(self.classes):
            raise ModelError(f"run {self.id!r} does not match its class table: the model gives {outputs} outputs "
                             f"but {CLASSES_FILE} lists {len(self.classes)} classes")
        return model

    def test_predictions(self):
        import numpy as np
        p = self.path / PREDICTIONS_FILE
        return np.load(p) if p.is_file() else None

    def label(self) -> str:
        try:
            config = self.config
        except RunError:
            return f"{self.id} (unreadable {CONFIG_FILE})"
        acc = self.metrics.get("accuracy")
        score = f" · acc {acc:.3f}" if isinstance(acc, (int, float)) else ""
        return f"{self.id} ({config.arch} on {config.dataset}{score})"


def _scan(root: Path, shipped: bool) -> list[Run]:
    if not root.is_dir():
        return []
    return [Run(p.name, p, shipped) for p in root.iterdir()
            if p.is_dir() and RUN_ID_RE.fullmatch(p.name) and (p / CONFIG_FILE).is_file()]


def list_runs() -> list[Run]:
    """Every run, newest first: the user's runs, then the shipped ones."""
    user = sorted(_scan(runs_dir(), False), key=lambda r: r.path.stat().st_mtime, reverse=True)
    shipped = sorted(_scan(SHIPPED, True), key=lambda r: r.id)
    return user + [r for r in shipped if r.id not in {u.id for u in user}]


def get_run(run_id: str) -> Run:
    validate_run_id(run_id)
    for root, shipped in ((runs_dir(), False), (SHIPPED, True)):
        if (root / run_id / CONFIG_FILE).is_file():
            return Run(run_id, root / run_id, shipped)
    raise RunNotFoundError(f"no run named {run_id!r} in {runs_dir()} or {SHIPPED}")


def _pointer() -> Path:
    return runs_dir() / "ACTIVE"


def active_run() -> Run | None:
    """The user's chosen model, else the shipped default."""
    for p in (_pointer(), DEFAULT_POINTER):
        if p.is_file():
            try:
                return get_run(p.read_text(encoding="utf-8").strip())
            except (ValueError, RunNotFoundError):
                continue
    return None


def active_run_id() -> str | None:
    run = active_run()
    return run.id if run else None


def set_active(run_id: str) -> Run:
    """Make a run the model every page and command uses, once its model loads and matches its class table."""
    run = get_run(run_id)
    try:
        run.load_model()
    except ModelError as e:
        raise ModelError(f"run {run_id!r} cannot be activated: {e}") from None
    _pointer().parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(_pointer()) as f:
        f.write(run_id + "\n")
    return run


def shipped_default() -> Run | None:
    """The default model shipped with the project."""
    try:
        return get_run(DEFAULT_POINTER.read_text(encoding="utf-8").strip())
    except (OSError, RunError, RunNotFoundError):
        return None


@dataclass
class Active:
    """The model in use and the run it belongs to."""
    run: Run  # the run whose model is in use
    model: object  # the loaded model (whatever `load` returned)
    problem: str = ""  # one line: why the chosen model is not the one in use; empty when it is


def load_active(load=Run.load_model) -> Active | None:
    """The active model, loaded and checked by `load(run)`; if it fails, the shipped default and why.

    None when there is no model at all. Raises ModelError only when the shipped default fails too.
    """
    chosen = active_run()
    if chosen is None:
        return None
    try:
        return Active(chosen, load(chosen))
    except RunError as e:
        problem = str(e)
    default = shipped_default()
    if default is None or default.id == chosen.id:
        raise ModelError(f"the active model cannot be used: {problem}")
    return Active(default, load(default), f"The active model cannot be used: {problem}. "
                                          f"Using the shipped default {default.id} instead.")
