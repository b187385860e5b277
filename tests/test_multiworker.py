"""--strategy multi-worker: real worker processes on 127.0.0.1 train one model, and a lost worker stops the cluster."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import write_dataset

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 20  # KMNIST_COLLECTIVE_TIMEOUT given to the workers: how long a lost worker may take to notice
TRAIN = ["--arch", "seed", "--batch-size", "32", "--seed", "3"]


def free_ports(n: int) -> list[int]:
    """Ports free now (bound to port 0, then released), one per worker."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def start_cluster(tmp_path: Path, data_dir: Path, args: list[str], workers: int = 2) -> list[subprocess.Popen]:
    """`python -m kmnist train --strategy multi-worker ARGS` once per worker, each with its own runs dir and temp dir."""
    cluster = [f"127.0.0.1:{p}" for p in free_ports(workers)]
    procs = []
    for i in range(workers):
        (tmp_path / f"tmp-{i}").mkdir(exist_ok=True)
        env = os.environ | {"TF_CONFIG": json.dumps({"cluster": {"worker": cluster}, "task": {"type": "worker", "index": i}}),
                            "KMNIST_RUNS_DIR": str(tmp_path / f"runs-{i}"), "TMPDIR": str(tmp_path / f"tmp-{i}"),
                            "KMNIST_COLLECTIVE_TIMEOUT": str(TIMEOUT_S), "TF_CPP_MIN_LOG_LEVEL": "2"}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "kmnist", "train", "--strategy", "multi-worker", "--data-dir", str(data_dir),
             "--json", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return procs


def finish(procs, timeout=600) -> list[tuple[int, str, str]]:
    out = []
    for p in procs:
        try:
            stdout, stderr = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        out.append((p.returncode, stdout, stderr))
    return out


def status(tmp_path: Path, run_id: str) -> dict:
    try:
        return json.loads((tmp_path / "runs-0" / run_id / "status.json").read_text())
    except (OSError, ValueError):
        return {}


@pytest.mark.slow
def test_two_workers_train_one_model_like_one_machine(data_dir, tmp_path):
    import keras
    from kmnist import distributed, runs
    from kmnist.config import recipe
    from kmnist.train import train
    (chief_rc, chief_out, chief_err), (rc1, out1, err1) = finish(
        start_cluster(tmp_path, data_dir, [*TRAIN, "--dataset", "tiny10", "--epochs", "2", "--run-id", "mw"]))
    assert chief_rc == 0 and rc1 == 0, f"chief: {chief_err[-2000:]}\nworker 1: {err1[-2000:]}"
    summary, part = json.loads(chief_out), json.loads(out1)
    assert summary["state"] == "completed" and part["state"] == "completed" and part["epochs_done"] == 2
    # The chief alone wrote a run; the other worker left nothing in its runs dir nor its temp dir.
    assert [p.name for p in (tmp_path / "runs-0").iterdir()] == ["mw"]
    assert not (tmp_path / "runs-1").exists() and not any((tmp_path / "tmp-1").iterdir())
    run = runs.Run("mw", tmp_path / "runs-0" / "mw")
    assert run.state == "completed" and run.config.strategy == "multi-worker"
    assert not (run.path / distributed.CHECKPOINT_FILE).exists(), "a completed run keeps no checkpoint"
    model = keras.models.load_model(run.path / "model.keras")
    assert distributed.digest(model) == part["weights_sha256"], "the workers ended with different weights"
    loss = run.history["loss"]
    assert len(loss) == 2 and loss[1] < loss[0], f"training should reduce the loss: {loss}"
    # One machine, same data, seed and global batch (Keras' own fit): the first epoch's loss agrees. Each worker
    # warps and drops out its half of the batch with its own draws, so 10% is allowed.
    config = recipe("seed").replace(dataset="tiny10", epochs=1, batch_size=32, seed=3)
    one = train(config, data_root=data_dir, runs_root=tmp_path / "one", run_id="one").history["loss"][0]
    assert abs(loss[0] - one) <= 0.1 * one, f"first epoch: two workers {loss[0]:.4f} vs one machine {one:.4f}"


@pytest.mark.slow
def test_a_killed_worker_stops_the_cluster_and_resume_continues(tmp_path):
    data = tmp_path / "data"
    write_dataset(data, "small10", 10, 100, 2, seed=2)  # 900 images to fit: 29 steps an epoch
    args = [*TRAIN, "--dataset", "small10", "--epochs", "3", "--run-id", "mw"]
    procs = start_cluster(tmp_path, data, args)
    deadline = time.time() + 240
    while not (status(tmp_path, "mw").get("epoch", 0) >= 2 and status(tmp_path, "mw").get("batch", 0) >= 1):
        assert time.time() < deadline and procs[0].poll() is None, "the chief never reached its second epoch"
        time.sleep(0.1)
    procs[1].send_signal(signal.SIGKILL)  # worker 1 dies mid-epoch
    killed, epoch = time.time(), status(tmp_path, "mw")["epoch"]
    rc, _, err = finish(procs[:1], timeout=TIMEOUT_S + 60)[0]
    took = time.time() - killed
    assert took <= TIMEOUT_S + 10, f"the chief took {took:.0f} s to give up on a dead worker"
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    # The status may lag the chief by one write (0.5 s), so the epoch it stopped in is this one or the next.
    assert rc == 2 and len(lines) == 1, err[-2000:]
    assert any(f"worker 0 of 2 stopped in epoch {e}:" in lines[0] for e in (epoch, epoch + 1)), lines[0]
    failed = status(tmp_path, "mw")
    assert failed["state"] == "failed" and "--resume" in failed["error"]
    # The same commands with --resume continue from the last completed epoch, not from scratch.
    before = json.loads((tmp_path / "runs-0" / "mw" / "history.json").read_text())
    assert 1 <= len(before["loss"]) < 3
    results = finish(start_cluster(tmp_path, data, [*args, "--resume"]))
    assert [r[0] for r in results] == [0, 0], "\n".join(r[2][-1500:] for r in results)
    after = json.loads((tmp_path / "runs-0" / "mw" / "history.json").read_text())
    assert len(after["loss"]) == 3 and after["loss"][:len(before["loss"])] == before["loss"]
    assert status(tmp_path, "mw")["state"] == "completed"


def test_cluster_settings_are_checked(monkeypatch):
    from kmnist import distributed
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(distributed.ClusterError, match="needs TF_CONFIG"):
        distributed.worker()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}))
    with pytest.raises(distributed.ClusterError, match="index 1 is outside the 1 workers"):
        distributed.worker()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1"], "ps": ["b:1"]},
                                                "task": {"type": "worker", "index": 0}}))
    with pytest.raises(distributed.ClusterError, match="only workers"):
        distributed.worker()
    monkeypatch.setenv(distributed.TIMEOUT_ENV, "soon")
    with pytest.raises(distributed.ClusterError, match="positive number of seconds"):
        distributed.timeout_s()
    # A last batch too small to give each worker an image is left out; others are kept.
    assert distributed.batches(100, 32, 2) == 4 and distributed.batches(97, 32, 2) == 3
    assert distributed.batches(96, 32, 2) == 3 and distributed.batches(33, 32, 2) == 1


def test_resume_needs_a_multi_worker_run(data_dir):
    from kmnist import distributed
    from kmnist.config import recipe
    from kmnist.train import train
    with pytest.raises(distributed.ClusterError, match="--resume continues a multi-worker run"):
        train(recipe("seed").replace(dataset="tiny10"), data_root=data_dir, run_id="x", resume=True)
