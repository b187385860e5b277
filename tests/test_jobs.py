"""Background training jobs: a real subprocess trains, one at a time, cancels, and dead processes are named."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from kmnist import files, jobs, runs

TINY = jobs.JobRequest("tiny10", epochs=1, batch_size=32)


def wait_for(run_id: str, done, timeout: float = 180.0) -> jobs.Job:
    """Poll the job as the page does until `done(job)` holds."""
    end = time.time() + timeout
    while time.time() < end:
        job = jobs.get(run_id)
        if done(job):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {run_id} still {jobs.get(run_id).state} after {timeout} s; log:\n"
                         + jobs.read_log(jobs.get(run_id)))


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.slow
def test_a_job_trains_in_the_background_one_at_a_time(data_dir, runs_dir):
    run_id = jobs.start(TINY, data_dir)
    assert jobs.running().run_id == run_id, "a started job is found from disk at once"
    with pytest.raises(jobs.JobError, match="one training at a time"):
        jobs.start(TINY, data_dir)
    job = wait_for(run_id, lambda j: not j.active)
    assert job.state == "completed", job.message + jobs.read_log(job)
    assert job.run.metrics["epochs_done"] == 1 and job.run.has_model
    assert job.log.is_file() and job.log.parent == runs_dir / ".jobs", "the log sits beside the run"
    assert jobs.running() is None and jobs.latest().run_id == run_id, "a finished job is still shown"
    assert jobs.progress_fraction(job) == 1.0
    runs.set_active(run_id)
    assert runs.active_run_id() == run_id


@pytest.mark.slow
def test_cancel_stops_the_job_and_keeps_a_cancelled_run(data_dir, runs_dir):
    run_id = jobs.start(jobs.JobRequest("tiny10", epochs=200, batch_size=32), data_dir)
    wait_for(run_id, lambda j: (runs_dir / run_id).is_dir() or not j.active)
    jobs.cancel(run_id)
    job = wait_for(run_id, lambda j: not j.active)
    assert job.state == "cancelled", job.message + jobs.read_log(job)
    assert job.run.metrics["epochs_done"] < 200 and job.run.has_model, "a cancelled run is saved as it stands"


@pytest.mark.slow
def test_cancel_while_still_starting(data_dir, runs_dir):
    run_id = jobs.start(TINY, data_dir)
    job = jobs.cancel(run_id)  # still importing TensorFlow: no run dir, no signal handler yet
    job = wait_for(run_id, lambda j: not j.active, timeout=60)
    assert job.state == "cancelled"


def test_a_dead_process_mid_run_is_reported_interrupted(runs_dir):
    run_dir = runs_dir / "lost-run"
    run_dir.mkdir(parents=True)
    files.write_json(run_dir / runs.STATUS_FILE, {"state": "running", "pid": dead_pid(), "epoch": 3, "epochs": 12})
    job = jobs.get("lost-run")
    assert job.state == "interrupted" and "gone" in job.message and "epoch 3 of 12" in job.message
    assert jobs.running() is None, "an interrupted job does not block new ones"
    assert jobs.latest().run_id == "lost-run", "but it is still shown"


def test_a_process_that_died_before_writing_status_is_failed(runs_dir):
    jobs.jobs_dir().mkdir(parents=True)
    log = jobs.jobs_dir() / "early.log"
    log.write_text("Traceback ...\nImportError: no TensorFlow\n")
    files.write_json(jobs.jobs_dir() / "early.json", {"run_id": "early", "pid": dead_pid(), "started": time.time(),
                                                      "log": str(log)})
    job = jobs.get("early")
    assert job.state == "failed" and "ImportError: no TensorFlow" in job.message


def test_refusals_say_why(data_dir, monkeypatch):
    with pytest.raises(jobs.JobError, match="missing"):
        jobs.start(jobs.JobRequest("absent"), data_dir)
    with pytest.raises(jobs.JobError, match="unknown architecture"):
        jobs.start(jobs.JobRequest("tiny10", arch="nope"), data_dir)
    monkeypatch.setenv("KMNIST_ALLOW_TRAINING", "0")
    assert not jobs.training_allowed()
    with pytest.raises(jobs.JobError, match="KMNIST_ALLOW_TRAINING=0"):
        jobs.start(TINY, data_dir)
    assert jobs.list_jobs() == [], "nothing was started"


def test_command_passes_the_data_dir_and_run_id(data_dir):
    argv = jobs.command(TINY, "my-run", data_dir)
    assert argv[argv.index("--data-dir") + 1] == str(data_dir.resolve())
    assert argv[argv.index("--run-id") + 1] == "my-run" and argv[argv.index("--epochs") + 1] == "1"


def test_progress_text():
    job = jobs.Job("r", 1, 0.0, "running", {"epoch": 2, "epochs": 4, "batch": 5, "batches": 10, "eta_s": 75,
                                             "metrics": {"loss": 0.5, "accuracy": 0.8}})
    assert jobs.progress_fraction(job) == pytest.approx(15 / 40)
    assert jobs.describe(job) == "epoch 2/4 · batch 5/10 · about 1 min 15 s left"
    assert jobs.live_point(job) == (1.5, {"loss": 0.5, "accuracy": 0.8})
