"""Fault injection: every fault of issue 12 gets a clear message and an exit code, and breaks nothing.

Each test injects one fault (a truncated or mismatched model, a SIGKILLed trainer, a full disk, odd data
files and images, bad run ids) and checks the message, the exit code, that nothing broken sits under a final
name, and that the active model still loads.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from kmnist import KmnistError, files, jobs, runs
from kmnist import preprocess as pp
from kmnist.cli import main
from kmnist.config import TrainConfig
from kmnist.train import train
from tests.conftest import SEED_RUN, png  # SEED_RUN: a shipped run to copy, a valid 10-class run without training


def copy_run(run_id: str) -> runs.Run:
    """A valid user run: a copy of the shipped seed run under another id."""
    shutil.copytree(runs.SHIPPED / SEED_RUN, runs.runs_dir() / run_id)
    return runs.get_run(run_id)


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def pointer() -> str | None:
    p = runs.runs_dir() / "ACTIVE"
    return p.read_text() if p.is_file() else None


def assert_active_model_loads() -> runs.Active:
    active = runs.load_active()
    assert active is not None and not active.problem, f"the active model must still load: {active}"
    assert active.model.output_shape[-1] == len(active.run.classes)
    return active


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), f"expected one error line, got:\n{err}"
    assert "Traceback" not in err
    return lines[0]


# --- a model that is active can always be loaded -------------------------------------------------

def test_a_truncated_model_cannot_be_activated(runs_dir, capsys):
    run = copy_run("cut")
    truncate(run.path / runs.MODEL_FILE)
    before = pointer()
    code, _, err = cli(capsys, "activate", "cut")
    line = one_line_error(err)
    assert code == 2 and "'cut'" in line and "truncated" in line, line
    assert pointer() == before, "a refused activation leaves the pointer as it was"
    assert_active_model_loads()


def test_a_class_table_that_does_not_match_the_model_cannot_be_activated(runs_dir, capsys):
    run = copy_run("five")
    table = json.loads((run.path / runs.CLASSES_FILE).read_text())
    files.write_json(run.path / runs.CLASSES_FILE, table[:5])
    code, _, err = cli(capsys, "activate", "five")
    line = one_line_error(err)
    assert code == 2 and "'five'" in line and "10 outputs" in line and "5 classes" in line, line
    assert runs.active_run_id() != "five"
    assert_active_model_loads()


def test_a_good_run_is_activated(runs_dir, capsys):
    copy_run("good")
    code, out, _ = cli(capsys, "activate", "good")
    assert code == 0 and "good" in out and runs.active_run_id() == "good"
    assert assert_active_model_loads().run.id == "good"


def test_a_model_broken_after_activation_falls_back_to_the_default_with_one_line(runs_dir):
    run = copy_run("later")
    runs.set_active("later")
    truncate(run.path / runs.MODEL_FILE)  # changed on disk after it was activated
    active = runs.load_active()
    default = runs.shipped_default()
    assert active.run.id == default.id and active.model.output_shape[-1] == len(default.classes)
    assert "later" in active.problem and "truncated" in active.problem and default.id in active.problem
    assert "\n" not in active.problem, "one line"


def test_a_missing_model_is_a_clear_message(runs_dir, capsys):
    run = copy_run("nomodel")
    (run.path / runs.MODEL_FILE).unlink()
    code, _, err = cli(capsys, "predict", "--run", "nomodel", __file__)
    line = one_line_error(err)
    assert code == 2 and "'nomodel'" in line and "has no model.keras" in line, line


def test_a_corrupt_config_is_an_error_naming_the_file(runs_dir, capsys):
    run = copy_run("badconf")
    (run.path / runs.CONFIG_FILE).write_text("{not json", encoding="utf-8")
    code, _, err = cli(capsys, "evaluate", "--run", "badconf")
    line = one_line_error(err)
    assert code == 2 and str(run.path / runs.CONFIG_FILE) in line and "corrupt" in line, line
    code, out, _ = cli(capsys, "runs")  # one broken run does not hide the others
    assert code == 0 and "badconf" in out and SEED_RUN in out


def test_a_bug_keeps_its_traceback(monkeypatch):
    def bug():
        raise ValueError("a bug, not a user's mistake")

    monkeypatch.setattr(runs, "list_runs", bug)
    with pytest.raises(ValueError, match="a bug"):
        main(["runs"])


# --- a dead training is seen as dead -------------------------------------------------------------

@pytest.mark.slow  # trains a model (in a separate process for the kill): seconds, not the fast loop
def test_a_sigkilled_trainer_reads_interrupted_within_10_s(data_dir, runs_dir, capsys):
    env = os.environ | {"KMNIST_RUNS_DIR": str(runs_dir), "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "kmnist", "train", "--dataset", "tiny10", "--epochs", "500",
                             "--batch-size", "8", "--run-id", "victim", "--data-dir", str(data_dir), "--json"],
                            env=env, cwd=files.ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    status_file = runs_dir / "victim" / runs.STATUS_FILE
    try:
        end = time.time() + 180
        while (files.read_json(status_file, {}) or {}).get("epoch", 0) < 2:
            assert proc.poll() is None and time.time() < end, f"trainer never got going: {proc.stderr.read()}"
            time.sleep(0.2)
        status = files.read_json(status_file)
        assert status["pid"] == proc.pid and status["heartbeat"] > time.time() - 10
        assert runs.get_run("victim").state == "running"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    killed = time.time()
    code, out, _ = cli(capsys, "runs", "--json")
    row = next(r for r in json.loads(out) if r["id"] == "victim")
    assert time.time() - killed < 10
    assert row["state"] == "interrupted" and row["at"].startswith("epoch "), row
    assert jobs.get("victim").state == "interrupted", "the jobs view agrees"
    code, _, err = cli(capsys, "evaluate", "--run", "victim", "--data-dir", str(data_dir))
    line = one_line_error(err)
    assert code == 2 and "has no model.keras" in line and "interrupted at epoch" in line, line


def test_a_stale_heartbeat_reads_interrupted_even_if_the_pid_lives(runs_dir):
    run_dir = runs_dir / "stalled"
    run_dir.mkdir(parents=True)
    files.write_json(run_dir / runs.STATUS_FILE, {"state": "running", "epoch": 2, "epochs": 5, **runs.heartbeat()})
    assert runs.judge(files.read_json(run_dir / runs.STATUS_FILE)) == "running", "this very process is alive"
    stale = runs.heartbeat() | {"heartbeat": time.time() - runs.STALE_S - 1}  # e.g. a recycled pid
    assert runs.judge({"state": "running"} | stale) == "interrupted"
    other_host = {"state": "running", "pid": 1, "host": "elsewhere", "heartbeat": time.time()}
    assert runs.judge(other_host) == "running", "another machine's run goes by its heartbeat"


def fake_save_on_full_disk(self, filepath, *args, **kwargs):
    """keras.Model.save on a full disk: part of the file is written, then ENOSPC."""
    with open(filepath, "wb") as f:
        f.write(b"PK\x03\x04 half a model")
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(filepath))


def test_a_full_disk_while_saving_fails_the_run_and_leaves_no_half_model(data_dir, runs_dir, monkeypatch, capsys):
    import keras
    copy_run("mine")
    runs.set_active("mine")
    monkeypatch.setattr(keras.Model, "save", fake_save_on_full_disk)
    code, _, err = cli(capsys, "train", "--dataset", "tiny10", "--epochs", "1", "--limit", "60",
                       "--run-id", "full", "--data-dir", str(data_dir), "--json")
    line = one_line_error(err)
    assert code == 2 and "No space left on device" in line, line
    run_dir = runs_dir / "full"
    status = json.loads((run_dir / runs.STATUS_FILE).read_text())
    assert status["state"] == "failed" and "No space left" in status["error"]
    assert not (run_dir / runs.MODEL_FILE).exists(), "no half-written model under the final name"
    for f in run_dir.iterdir():
        if f.suffix == ".json":
            json.loads(f.read_text())  # every JSON under its final name is whole
    assert runs.active_run_id() == "mine" and assert_active_model_loads().run.id == "mine"
    with pytest.raises(runs.ModelError, match="has no model.keras"):
        runs.set_active("full")


def test_a_disk_too_full_for_even_the_status_reads_interrupted(data_dir, runs_dir, monkeypatch):
    write_json = files.write_json
    allowed = {"n": 3}  # the starting status, config.json and classes.json fit; nothing after

    def full_disk(path, data):
        allowed["n"] -= 1
        if allowed["n"] < 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        write_json(path, data)

    monkeypatch.setattr(files, "write_json", full_disk)
    with pytest.raises(OSError, match="No space left"):
        train(TrainConfig(dataset="tiny10", epochs=1, limit=60), data_root=data_dir, run_id="nospace")
    run = runs.get_run("nospace")
    assert run.status["state"] == "starting", "nothing more could be written"
    monkeypatch.setattr(runs, "pid_alive", lambda *a: False)  # the trainer process has exited
    assert run.state == "interrupted"
    assert not (run.path / runs.MODEL_FILE).exists()
    assert [p.name for p in run.path.iterdir() if p.name.startswith(".")] == [], "no temporary files left"
    assert_active_model_loads()


# --- every bad input gets a clear message ---------------------------------------------------------

@pytest.fixture
def odd_data(data_dir) -> Path:
    """A copy of tiny10 named `odd`, whose test images each test breaks its own way."""
    folder = data_dir / "odd"
    shutil.copytree(data_dir / "tiny10", folder)
    for f in folder.iterdir():
        f.rename(folder / f.name.replace("tiny10", "odd"))
    return folder / "odd-test-imgs.npz"


def break_npz(path: Path, how: str) -> None:
    images = np.load(path)["arr_0"]
    if how == "truncated":
        truncate(path)
    elif how == "no arr_0":
        with open(path, "wb") as f:
            np.savez(f, images=images)
    elif how == "text":
        path.write_text("index,label\n0,1\n", encoding="utf-8")
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "float":
        with open(path, "wb") as f:
            np.savez(f, images.astype(np.float32) / 255.0)
    elif how == "pickled":
        with open(path, "wb") as f:
            np.savez(f, np.array([{"not": "an image"}] * 3, dtype=object))
    elif how == "shape":
        with open(path, "wb") as f:
            np.savez(f, images.reshape(len(images), -1))


@pytest.mark.parametrize("how, words", [
    ("truncated", "corrupt or truncated .npz"),
    ("no arr_0", "holds no array 'arr_0' (it holds: images)"),
    ("text", "is not an .npz archive"),
    ("empty", "is empty"),
    ("float", "float32; kmnist reads only uint8 0..255 (values in 0..1: multiply by 255"),
    ("pickled", "holds Python objects"),
    ("shape", "expected (N, 28, 28)"),
])
def test_odd_npz_files_are_named_and_refused(odd_data, how, words, capsys):
    break_npz(odd_data, how)
    code, out, err = cli(capsys, "evaluate", "--dataset", "odd", "--data-dir", str(odd_data.parent.parent))
    line = one_line_error(err)
    assert code == 2 and str(odd_data) in line and words in line, line
    assert "allow_pickle" not in line, "never point the user at unsafe loading"
    assert out == "", "no score is printed"


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares a huge size in a few bytes (its pixels are never there)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


def test_image_faults_are_named(tmp_path, capsys):
    ink = np.full((64, 64), 65535, np.uint16)
    ink[12:52, 28:36] = 20000  # grey ink on white paper, in 16 bits
    cases = {"grey16.png": png(ink), "huge.png": png_header(20000, 20000), "big.png": png_header(5000, 5000),
             "blank.png": png(np.full((64, 64), 255, np.uint8)), "notes.png": b"not an image at all"}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    paths = [str(tmp_path / n) for n in cases] + ["/dev/zero"]
    code, out, err = cli(capsys, "predict", *paths, "--json")
    assert code == 1, "some files failed"
    said = dict(line.split(": ", 1) for line in err.strip().splitlines())
    assert said["/dev/zero"] == "the file is larger than the 5 MB limit"
    assert "too large" in said[paths[1]] and "4096x4096" in said[paths[1]]
    assert said[paths[2]] == "the image is too large: 5000x5000 pixels; the limit is 4096x4096 pixels"
    assert said[paths[3]] == "the image holds no ink"
    assert said[paths[4]] == "the file is not a readable PNG or JPEG image"
    results = json.loads(out)
    assert [r["file"] for r in results] == [paths[0]], "the 16-bit image is read, not taken for blank paper"
    seen = pp.prepare(tmp_path / "grey16.png")
    assert seen.max() == 255 and (seen > 128).sum() > 20, "16-bit grey ink is scaled to 8 bits, not clipped"


def test_reading_at_most_the_limit(monkeypatch):
    monkeypatch.setattr(pp, "MAX_UPLOAD_BYTES", 1000)
    with pytest.raises(pp.BadImageError, match="larger than"):
        pp.read_image("/dev/zero")  # would never end if it read the whole file


@pytest.mark.parametrize("bad", ["nl\n", "", "x" * 300, "../up", "a/b", " lead", "tab\t"])
def test_bad_run_ids_are_refused_before_any_path_is_built(bad, runs_dir, capsys, tmp_path):
    with pytest.raises(runs.RunError, match="invalid run id"):
        runs.validate_run_id(bad)
    with pytest.raises(KmnistError):
        runs.create_run_dir(bad)
    for argv in (["activate", bad], ["evaluate", "--run", bad], ["predict", "--run", bad, __file__],
                 ["embed", "--space", "features", "--run", bad, "--data-dir", str(tmp_path)]):
        code, _, err = cli(capsys, *argv)
        line = one_line_error(err)
        assert code == 2 and "invalid run id" in line, (argv, line)
    assert not runs_dir.exists() or [p.name for p in runs_dir.iterdir()] in ([], ["ACTIVE"]), "no folder made"


def test_the_draw_page_with_a_broken_active_model_says_so_and_answers_with_the_default(runs_dir, tmp_path,
                                                                                         monkeypatch):
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("KMNIST_DATA_DIR", str(tmp_path))  # no data: the page needs only the model
    run = copy_run("broken")
    runs.set_active("broken")
    truncate(run.path / runs.MODEL_FILE)
    drawing = np.zeros((200, 200), np.uint8)
    drawing[40:160, 90:110] = 255
    at = AppTest.from_file(str(files.ROOT / "app.py"), default_timeout=90)
    at.session_state["draw_injected_image"] = drawing
    at.run()
    assert not at.exception, "no traceback reaches the browser"
    warnings = [w.value for w in at.warning if "none of the" not in w.value]  # a bar is no character: fine
    assert len(warnings) == 1 and "'broken'" in warnings[0] and "truncated" in warnings[0], warnings
    assert "\n" not in warnings[0] and str(files.ROOT) not in warnings[0].split("(")[0]
    assert at.metric[0].value in [c.char for c in runs.shipped_default().classes], "answered by the default"
