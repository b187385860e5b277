"""Background training jobs: a real subprocess trains, one at a time, cancels, and dead processes are named."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from kmnist import files, jobs, runs, settings
from kmnist.config import TrainConfig, preset

TINY = TrainConfig(dataset="tiny10", epochs=1, batch_size=32)


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
    run_id = jobs.start(TINY.replace(arch="resnet-bn", optimizer="adamw", learning_rate=1e-3, label_smoothing=0.1),
                        data_dir)
    assert jobs.running().run_id == run_id, "a started job is found from disk at once"
    with pytest.raises(jobs.JobError, match="one training at a time"):
        jobs.start(TINY, data_dir)
    job = wait_for(run_id, lambda j: not j.active)
    assert job.state == "completed", job.message + jobs.read_log(job)
    assert job.run.metrics["epochs_done"] == 1 and job.run.has_model
    assert job.run.config == TINY.replace(arch="resnet-bn", optimizer="adamw", learning_rate=1e-3,
                                          label_smoothing=0.1), "the job trains the whole config it was given"
    assert job.log.is_file() and job.log.parent == runs_dir / ".jobs", "the log sits beside the run"
    assert jobs.running() is None and jobs.latest().run_id == run_id, "a finished job is still shown"
    runs.set_active(run_id)
    assert runs.active_run_id() == run_id


@pytest.mark.slow
def test_cancel_stops_the_job_and_keeps_a_cancelled_run(data_dir, runs_dir):
    run_id = jobs.start(TINY.replace(epochs=200), data_dir)
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
        jobs.start(TINY.replace(dataset="absent"), data_dir)
    monkeypatch.setenv("KMNIST_ALLOW_TRAINING", "0")
    assert not settings.training_allowed()
    with pytest.raises(jobs.JobError, match="KMNIST_ALLOW_TRAINING=0"):
        jobs.start(TINY, data_dir)
    assert jobs.list_jobs() == [], "nothing was started"


def test_command_passes_the_data_dir_run_id_and_whole_config(data_dir, monkeypatch):
    config = preset("resnet-bn").replace(dataset="tiny10", epochs=3, seed=7)
    argv = jobs.command("my-run", data_dir)
    assert argv[argv.index("--data-dir") + 1] == str(data_dir.resolve())
    assert argv[argv.index("--run-id") + 1] == "my-run"
    assert argv[argv.index("--config") + 1] == str(jobs.config_path("my-run").resolve())
    # What the training process makes of it: the CLI's train, reading the config file start() writes.
    jobs.jobs_dir().mkdir(parents=True)
    files.write_json(jobs.config_path("my-run"), config.to_json())
    seen = {}

    class Started(Exception):
        pass

    def fake_train(config, **kwargs):
        seen.update(kwargs, config=config)
        raise Started

    monkeypatch.setattr("kmnist.train.train", fake_train)
    from kmnist.cli import main
    with pytest.raises(Started):
        main(argv[argv.index("train"):])
    assert seen["config"] == config, "the process trains the whole config, not a few fields of it"
    assert (seen["run_id"], str(seen["data_root"])) == ("my-run", str(data_dir.resolve()))
