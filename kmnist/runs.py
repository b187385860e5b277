"""The runs registry: where runs live, reading one back, listing them, and the active-model pointer."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path

from kmnist import classes as cls
from kmnist.config import TrainConfig
from kmnist.evaluate import Report
from kmnist.files import ROOT, atomic_open, read_json
from kmnist.preprocess import DEFAULT_FRAMING, Framing

SHIPPED = ROOT / "assets" / "runs"  # runs committed with the project, read-only
DEFAULT_POINTER = SHIPPED / "DEFAULT"  # the shipped default model's run id
RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,119}$")
MODEL_FILE, CONFIG_FILE, CLASSES_FILE = "model.keras", "config.json", "classes.json"
HISTORY_FILE, METRICS_FILE, STATUS_FILE = "history.json", "metrics.json", "status.json"
PREDICTIONS_FILE, CANCEL_FILE, FRAMING_FILE = "test_predictions.npy", "CANCEL", "framing.json"


class RunNotFoundError(LookupError):
    """No run has that id."""


def runs_dir() -> Path:
    """Where new runs are written: $KMNIST_RUNS_DIR, else runs/ beside the package."""
    return Path(os.environ.get("KMNIST_RUNS_DIR") or ROOT / "runs").expanduser()


def validate_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not RUN_ID_RE.match(run_id) or ".." in run_id:
        raise ValueError(f"invalid run id {run_id!r}: use letters, digits, '.', '_' and '-' only")
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
        raise FileExistsError(f"run {run_id!r} already exists in {root}; runs are never overwritten") from None
    return path


@dataclass
class Run:
    """One training run on disk, readable without anything else."""
    id: str  # run id, also the directory name
    path: Path  # the run directory
    shipped: bool = False  # committed under assets/ (read-only)

    @cached_property
    def config(self) -> TrainConfig:
        return TrainConfig.from_json(read_json(self.path / CONFIG_FILE, {}))

    @cached_property
    def classes(self) -> list[cls.ClassInfo]:
        return cls.from_json(read_json(self.path / CLASSES_FILE, []))

    @property
    def framing(self) -> Framing:
        """How its training images were framed; runs made before framing.json kept it in config.json."""
        framing = read_json(self.path / FRAMING_FILE) or read_json(self.path / CONFIG_FILE, {}).get("framing")
        return Framing(**framing) if framing else DEFAULT_FRAMING

    @property
    def status(self) -> dict:
        return read_json(self.path / STATUS_FILE, {}) or {}

    @property
    def state(self) -> str:
        return self.status.get("state", "unknown")

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

    def load_model(self):
        import keras  # deferred: listing runs should not pay for TensorFlow
        if not self.has_model:
            raise FileNotFoundError(f"run {self.id!r} has no model file ({self.state})")
        return keras.models.load_model(self.path / MODEL_FILE, compile=False)

    def test_predictions(self):
        import numpy as np
        p = self.path / PREDICTIONS_FILE
        return np.load(p) if p.is_file() else None

    def label(self) -> str:
        acc = self.metrics.get("accuracy")
        score = f" · acc {acc:.3f}" if acc is not None else ""
        return f"{self.id} ({self.config.arch} on {self.config.dataset}{score})"


def _scan(root: Path, shipped: bool) -> list[Run]:
    if not root.is_dir():
        return []
    return [Run(p.name, p, shipped) for p in root.iterdir()
            if p.is_dir() and RUN_ID_RE.match(p.name) and (p / CONFIG_FILE).is_file()]


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
    """Make a finished run the model every page and command uses."""
    run = get_run(run_id)
    if not run.has_model:
        raise ValueError(f"run {run_id!r} has no model to activate ({run.state})")
    _pointer().parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(_pointer()) as f:
        f.write(run_id + "\n")
    return run
