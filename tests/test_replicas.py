"""Several app processes (replicas behind a proxy) share one runs dir and one data dir: still one training at a time.

Saving drawings from two processes at once is tested in test_drawings.py (test_two_sessions_saving_at_once_lose_nothing).
"""
from __future__ import annotations

import multiprocessing
import time

from kmnist import jobs
from kmnist.config import TrainConfig

SLOW = TrainConfig(dataset="tiny10", epochs=200, batch_size=32)  # would run for minutes; cancelled at once


def _start(args):
    """One app replica: wait for the other, then press "Train" at the same moment."""
    barrier, data_dir = args
    barrier.wait()
    try:
        return "started", jobs.start(SLOW, data_dir)
    except jobs.JobError as e:
        return "refused", str(e)


def test_two_replicas_starting_a_training_at_once_get_one_job(data_dir, runs_dir):
    ctx = multiprocessing.get_context("spawn")  # separate interpreters, as separate `streamlit run` processes are
    with ctx.Manager() as manager:
        barrier = manager.Barrier(2)
        with ctx.Pool(2) as pool:
            outcomes = pool.map(_start, [(barrier, data_dir)] * 2)
    try:
        check(outcomes)
    finally:
        for job in jobs.list_jobs():  # however it went: leave no training running
            jobs.cancel(job.run_id)
            end = time.time() + 120
            while jobs.get(job.run_id).active:
                assert time.time() < end, f"the cancelled job {job.run_id} never ended"
                time.sleep(0.2)
    assert [j.state for j in jobs.list_jobs()] == ["cancelled"]


def check(outcomes):
    started = [value for kind, value in outcomes if kind == "started"]
    refused = [value for kind, value in outcomes if kind == "refused"]
    assert len(started) == 1 and len(refused) == 1, outcomes
    assert "one training at a time" in refused[0] and started[0] in refused[0], "the refusal names the running job"
    assert [j.run_id for j in jobs.list_jobs()] == started, "one job on disk, seen from any replica"
