"""Background training jobs: start `python -m kmnist train` as its own process, find it again, cancel it.

Everything is on disk, so a reloaded page or a restarted app finds the job again: a small record per
job in `runs_dir()/.jobs/` (pid, log, start time) and the run's own status.json, which train.py rewrites.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from kmnist import KmnistError, datasets, files, runs, settings
from kmnist.config import TrainConfig

ACTIVE_STATES = runs.ACTIVE_STATES
NICENESS = 10  # training runs below the app's priority, so pages stay responsive meanwhile
LOG_TAIL = 2000  # characters of the log quoted when a job died without a status


class JobError(KmnistError, RuntimeError):
    """A job cannot be started or found; the message says why."""


@dataclass
class Job:
    run_id: str  # the run directory the job writes
    pid: int | None  # the training process
    started: float  # when it was started (epoch seconds)
    state: str  # starting, running, completed, cancelled, failed, or interrupted (process gone mid-run)
    status: dict = field(default_factory=dict)  # the run's status.json, empty until the process writes it
    message: str = ""  # why it failed or was interrupted
    log: Path | None = None  # its stdout and stderr (None for trainings started from a terminal)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def run(self) -> runs.Run | None:
        try:
            return runs.get_run(self.run_id)
        except runs.RunNotFoundError:
            return None  # the process has not written its config yet


def jobs_dir() -> Path:
    return runs.runs_dir() / ".jobs"


def _log_tail(path: Path | None) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-LOG_TAIL:].strip() if path else ""
    except OSError:
        return ""


def _status(run_id: str) -> dict:
    """The run's status.json; empty until its process writes it."""
    return files.read_json(runs.runs_dir() / run_id / runs.STATUS_FILE, {}) or {}


def _job(run_id: str, record: dict, status: dict) -> Job:
    log = Path(record["log"]) if record.get("log") else None
    pid = record.get("pid") or status.get("pid")  # no record: a training started from a terminal
    state, message = status.get("state"), status.get("error", "")
    if state in ACTIVE_STATES and runs.judge(status, pid, record.get("proc_start")) == "interrupted":
        state = "interrupted"
        message = (f"The training process (pid {pid}) is gone but its run never finished: the app or machine "
                   f"was restarted, or the process was killed. It stopped at {runs.stopped_at(status)}; "
                   "start a new training to try again.")
    elif state is None:
        if runs.pid_alive(pid, record.get("proc_start")):
            state = "starting"
        elif record.get("cancel_requested"):
            state = "cancelled"
        else:
            state = "failed"
            message = "The training process ended before it wrote any status. Its log:\n" + _log_tail(log)
    started = record.get("started") or (runs.runs_dir() / run_id).stat().st_mtime
    return Job(run_id, pid, started, state, status, message, log)


def _records() -> dict[str, dict]:
    found = {}
    if jobs_dir().is_dir():
        for p in jobs_dir().glob("*.json"):
            if p.name.endswith(".config.json"):
                continue  # a job's training config, beside its record
            record = files.read_json(p)
            if isinstance(record, dict) and record.get("run_id"):
                found[record["run_id"]] = record
    return found


def list_jobs() -> list[Job]:
    """Every job started here, and every run started elsewhere (a terminal) that is still going; newest first."""
    records = _records()
    found = [_job(run_id, r, _status(run_id)) for run_id, r in records.items()]
    root = runs.runs_dir()
    if root.is_dir():
        for p in root.iterdir():
            if p.is_dir() and p.name not in records and runs.RUN_ID_RE.fullmatch(p.name):
                status = _status(p.name)
                if status.get("state") in ACTIVE_STATES:
                    found.append(_job(p.name, {}, status))
    return sorted(found, key=lambda j: j.started, reverse=True)


def latest() -> Job | None:
    """The job to show: the running one, else the most recent one."""
    found = list_jobs()
    return next((j for j in found if j.active), found[0] if found else None)


def running() -> Job | None:
    job = latest()
    return job if job and job.active else None


def get(run_id: str) -> Job:
    record = _records().get(run_id, {})
    if not record and not (runs.runs_dir() / run_id).is_dir():
        raise JobError(f"no training job named {run_id!r} in {runs.runs_dir()}")
    return _job(run_id, record, _status(run_id))


@contextmanager
def _lock():
    """Serialise starts across processes, so two clicks cannot both pass the one-at-a-time check."""
    jobs_dir().mkdir(parents=True, exist_ok=True)
    with open(jobs_dir() / "lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _new_run_id(config: TrainConfig) -> str:
    return _unique(runs.new_run_id(config))


def _unique(base: str) -> str:
    """`base`, or `base-2`, `base-3`... whichever no run or job has yet."""
    run_id, n = base, 1
    while (runs.runs_dir() / run_id).exists() or (jobs_dir() / f"{run_id}.json").exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def config_path(run_id: str) -> Path:
    """Where a job's training config waits for its process to read it."""
    return jobs_dir() / f"{run_id}.config.json"


def command(run_id: str, data_root: Path | None = None) -> list[str]:
    """The command line a job runs: the CLI's train, reading the job's config file."""
    return _kmnist(["train", "--config", str(config_path(run_id).resolve())], run_id, data_root)


def _kmnist(args: list[str], run_id: str, data_root: Path | None) -> list[str]:
    """`python -m kmnist ARGS` writing run `run_id`, niced."""
    argv = [sys.executable, "-m", "kmnist", *args, "--run-id", run_id,
            "--data-dir", str(datasets.data_dir(data_root).resolve()), "--json"]
    nice = shutil.which("nice")
    return [nice, "-n", str(NICENESS), *argv] if nice else argv  # nice execs, so the pid stays the trainer's


def _refuse_when_read_only() -> None:
    if not settings.training_allowed():
        raise JobError("Training is turned off here (KMNIST_ALLOW_TRAINING=0 or KMNIST_PUBLIC=1): this app is read-only.")


def _refuse_without_data(dataset: str, data_root: Path | None) -> None:
    status = datasets.status(dataset, data_root)
    if not status.trainable:
        raise JobError(datasets.missing_message(status, status.missing))


def start(config: TrainConfig, data_root: Path | None = None) -> str:
    """Start a training as `config` says, in the background; return its run id. Refuses while another runs."""
    _refuse_when_read_only()
    _refuse_without_data(config.dataset, data_root)

    def argv_for(run_id: str) -> list[str]:
        files.write_json(config_path(run_id), config.to_json())
        return command(run_id, data_root)
    return _launch(lambda: _new_run_id(config), argv_for)


def start_finetune(base_id: str, drawings: str, epochs: int = 3, data_root: Path | None = None) -> str:
    """Fine-tune a run with a drawings dataset in the background (kmnist.finetune); returns the new run id."""
    from kmnist.finetune import new_run_id
    _refuse_when_read_only()
    try:
        base = runs.get_run(base_id)
    except (ValueError, runs.RunNotFoundError) as e:
        raise JobError(str(e)) from None
    _refuse_without_data(base.config.dataset, data_root)
    if epochs < 1:
        raise JobError("epochs must be at least 1")
    args = ["finetune", "--run", base_id, "--with", drawings, "--epochs", str(epochs)]
    return _launch(lambda: _unique(new_run_id(base)), lambda run_id: _kmnist(args, run_id, data_root))


def _launch(new_id, argv_for) -> str:
    """Start `argv_for(run_id)` in the background unless a job runs; record it for the pages to find.

    Both are called under the job lock, so two pages starting at once get one job and one refusal."""
    with _lock():
        busy = running()
        if busy:
            raise JobError(f"Training run {busy.run_id!r} is still {busy.state}: one training at a time, "
                           "because a second one would halve the speed of both. Wait for it or cancel it.")
        run_id = new_id()
        log = jobs_dir() / f"{run_id}.log"
        env = os.environ | {"KMNIST_RUNS_DIR": str(runs.runs_dir().resolve()), "TF_CPP_MIN_LOG_LEVEL": "2",
                            "PYTHONUNBUFFERED": "1"}
        argv = argv_for(run_id)
        with open(log, "wb") as out:
            # Its own session: the training outlives a page rerun, and a Ctrl-C in the app's terminal.
            proc = subprocess.Popen(argv, cwd=files.ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        stat = runs.proc_stat(proc.pid)
        files.write_json(jobs_dir() / f"{run_id}.json", {
            "run_id": run_id, "pid": proc.pid, "proc_start": stat[1] if stat else None, "started": time.time(),
            "log": str(log), "argv": argv})
    return run_id


def cancel(run_id: str) -> Job:
    """Ask a job to stop: train.py finishes the current batch, saves the run and marks it cancelled."""
    job = get(run_id)
    if not job.active:
        return job
    run_dir = runs.runs_dir() / run_id
    if run_dir.is_dir():
        (run_dir / runs.CANCEL_FILE).touch()
    else:
        # Still importing TensorFlow, before any run dir or signal handler: stopping it loses nothing.
        path = jobs_dir() / f"{run_id}.json"
        files.write_json(path, (files.read_json(path, {}) or {}) | {"cancel_requested": True})
        if job.pid and runs.pid_alive(job.pid):
            os.kill(job.pid, signal.SIGTERM)
    return get(run_id)


def read_log(job: Job) -> str:
    return _log_tail(job.log)
