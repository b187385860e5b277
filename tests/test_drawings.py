"""Your drawings dataset (official layout, safe concurrent saves, delete) and fine-tuning with it."""
from __future__ import annotations

import multiprocessing
import os
import shutil

import numpy as np
import pytest

from kmnist import classes as cls, datasets, drawings, files, jobs, runs
from kmnist.config import TrainConfig

TABLE = [cls.make_class(i, c) for i, c in enumerate("おきすつなはまやれを")]  # the KMNIST classes


def stroke(label: int, seed: int = 0) -> np.ndarray:
    """A generated "drawing" of a class, unlike the fixture glyphs: a filled square at a class-specific place."""
    rng = np.random.default_rng(seed)
    img = np.zeros((28, 28), np.float32)
    y, x = 3 + (label % 5) * 4 + rng.integers(-1, 2), 4 + (label // 5) * 12 + rng.integers(-1, 2)
    img[y: y + 7, x: x + 7] = 1.0
    img += rng.normal(0, 0.05, img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def test_saved_drawings_form_a_dataset_in_the_official_layout(tmp_path):
    root = tmp_path / "data"
    saved = [drawings.save(stroke(i % 3, i), b"\x89PNG raw", TABLE[i % 3].char, "お", "run-x", TABLE, root=root)
             for i in range(6)]
    assert [d.split for d in saved] == ["train"] * 4 + ["test", "train"], "every fifth drawing is held out"
    ds = datasets.load(drawings.NAME, root)  # the ordinary loader reads it
    assert [c.char for c in ds.classes] == [c.char for c in TABLE], "the class map is the active model's"
    assert len(ds.train.labels) == 5 and len(ds.test.labels) == 1
    assert sorted(ds.train.labels.tolist() + ds.test.labels.tolist()) == sorted(i % 3 for i in range(6))
    assert np.array_equal(drawings.image(saved[0], root=root), stroke(0, 0))
    assert drawings.raw_png(saved[0], root=root) == b"\x89PNG raw"
    assert drawings.counts(drawings.drawings(root=root)) == {TABLE[0].char: 2, TABLE[1].char: 2, TABLE[2].char: 2}
    assert drawings.NAME in [s.name for s in datasets.list_datasets(root)], "listed like any dataset"

    drawings.delete(saved[1].id, root=root)
    left = drawings.drawings(root=root)
    assert saved[1].id not in [d.id for d in left] and len(left) == 5
    assert len(datasets.load_labels(drawings.NAME, "train", root)) == 4, "the dataset files follow a delete"
    with pytest.raises(LookupError):
        drawings.delete(saved[1].id, root=root)


def test_a_character_the_class_map_lacks_is_appended(tmp_path):
    root = tmp_path / "data"
    drawings.save(stroke(0), None, TABLE[0].char, "お", "run-x", TABLE, root=root)
    drawings.save(stroke(1), None, "あ", "お", "run-y", cls.k49_classes(), root=root)
    table = datasets.load_classes(drawings.NAME, root)
    assert table[-1].char == "あ" and len(table) == 11
    mine = drawings.for_classes(TABLE, root=root)
    assert len(mine.images) == 1 and mine.skipped == 1, "matched to a model's classes by character"


def _save_many(args):
    root, worker, n = args
    for i in range(n):
        drawings.save(stroke(i % 10, worker * 100 + i), f"raw {worker} {i}".encode(), TABLE[i % 10].char, "お",
                      f"worker-{worker}", TABLE, root=root)
    return os.getpid()


def test_two_sessions_saving_at_once_lose_nothing(tmp_path):
    root = tmp_path / "data"
    per_worker = 15
    with multiprocessing.get_context("fork").Pool(2) as pool:
        pids = pool.map(_save_many, [(root, w, per_worker) for w in range(2)])
    assert len(set(pids)) == 2, "the saves ran in two processes"
    found = drawings.drawings(root=root)
    assert len(found) == 2 * per_worker and len({d.id for d in found}) == 2 * per_worker, "nothing lost or doubled"
    ds = datasets.load(drawings.NAME, root)
    assert len(ds.train.labels) + len(ds.test.labels) == 2 * per_worker, "the dataset files hold every drawing"
    raws = {drawings.raw_png(d, root=root) for d in found}
    assert raws == {f"raw {w} {i}".encode() for w in range(2) for i in range(per_worker)}


def test_bad_input_is_refused(tmp_path):
    with pytest.raises(ValueError, match="28x28"):
        drawings.save(np.zeros((30, 30), np.uint8), None, "お", "お", "r", TABLE, root=tmp_path)
    with pytest.raises(ValueError):
        drawings.delete("../../etc", root=tmp_path)
    with pytest.raises(ValueError):
        drawings.folder("../up", tmp_path)


# Fine-tuning

TOLERANCE = 0.05  # base test accuracy may drop at most this much after a fine-tune


@pytest.mark.slow  # trains a model (in a separate process for the kill): seconds, not the fast loop
def test_finetune_learns_the_drawings_and_keeps_the_base_accuracy(data_dir, runs_dir):
    from kmnist.finetune import finetune, read_report
    from kmnist.runs import get_run
    from kmnist.train import train
    base = train(TrainConfig(dataset="tiny10", epochs=6, batch_size=32, seed=0), data_root=data_dir)
    assert base.metrics["accuracy"] > 0.8, f"the base model should learn the glyphs: {base.metrics['accuracy']}"
    for i in range(50):  # 40 to learn from, 10 held out (every fifth): each class 4 and 1
        label = (i + i // 10) % 10
        drawings.save(stroke(label, seed=i), None, base.classes[label].char, "?", base.id, base.classes,
                      root=data_dir)
    rep = finetune(base.id, epochs=5, data_root=data_dir)
    assert rep.held_out == 10 and rep.train_drawings == 40 and rep.repeat >= 1
    assert rep.before.drawings_accuracy < 0.5, f"the base model cannot read the new style: {rep.before}"
    assert rep.after.drawings_accuracy >= rep.before.drawings_accuracy + 0.3, (
        f"fine-tuning should teach the held-out drawings: {rep.summary()}")
    assert rep.after.test_accuracy >= rep.before.test_accuracy - TOLERANCE, (
        f"fine-tuning may not cost more than {TOLERANCE:.0%} base test accuracy: {rep.summary()}")
    assert rep.before.test_accuracy == pytest.approx(base.metrics["accuracy"])
    run = get_run(rep.run)
    assert run.has_model and read_report(run) == rep and rep.run.startswith(f"{base.id}-ft-")


def test_finetune_without_drawings_says_so(data_dir, runs_dir):
    from kmnist.finetune import finetune
    shutil.copytree(runs.SHIPPED / "kmnist6k-seed", runs_dir / "base")  # any run with a model: none is trained
    with pytest.raises(ValueError, match="no drawings to learn from"):
        finetune("base", data_root=data_dir)


def test_finetune_job_command_line(data_dir, runs_dir, monkeypatch):
    started = {}

    class FakePopen:
        pid = 12345

        def __init__(self, argv, **kwargs):
            started["argv"] = argv

    monkeypatch.setattr(jobs.subprocess, "Popen", FakePopen)
    with pytest.raises(jobs.JobError, match="kmnist6k"):
        jobs.start_finetune("kmnist6k-seed", "my-drawings", 2, data_root=data_dir)
    monkeypatch.setattr(jobs.datasets, "status", lambda name, root=None: type("S", (), {"trainable": True})())
    run_id = jobs.start_finetune("kmnist6k-seed", "my-drawings", 2, data_root=data_dir)
    argv = started["argv"]
    assert run_id.startswith("kmnist6k-seed-ft-")
    i = argv.index("finetune")
    assert argv[i:i + 7] == ["finetune", "--run", "kmnist6k-seed", "--with", "my-drawings", "--epochs", "2"]
    assert argv[argv.index("--run-id") + 1] == run_id and "--json" in argv


# Teaching a new character

def test_imprinting_keeps_the_old_rows_and_points_a_new_row_at_its_drawings():
    from tests.conftest import glyphs
    from kmnist import models
    from kmnist.finetune import imprint
    import keras
    keras.utils.set_random_seed(0)
    base = models.build("seed", 3)
    reference = glyphs(np.arange(30) % 3, 49)
    grown = imprint(base, "seed", 5, reference, glyphs(np.full(6, 44), 49, seed=3), np.full(6, 3))
    old, new = base.get_weights(), grown.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(old[:-2], new[:-2])), "every layer below the head is kept"
    assert np.array_equal(new[-2][:, :3], old[-2]) and np.array_equal(new[-1][:3], old[-1]), "old rows kept"
    assert np.linalg.norm(new[-2][:, 3]) == pytest.approx(np.linalg.norm(old[-2], axis=0).mean(), rel=1e-4)
    assert not new[-2][:, 4].any() and new[-1][4] < old[-1].min(), "a class without drawings is never chosen"
    probs = grown.predict(glyphs(np.full(4, 44), 49, seed=9)[..., None].astype("float32"), verbose=0)
    assert (probs.argmax(axis=1) == 3).all(), f"imprinting alone reads the new character's images: {probs}"


@pytest.mark.slow  # trains a base and fine-tunes it: ~10 s
def test_finetune_teaches_a_new_character_and_keeps_the_old_ones_order(data_dir, runs_dir):
    from tests.conftest import glyphs
    from kmnist.export import EXPORT_FILE, ONNX_FILE, session
    from kmnist.finetune import MIN_DRAWINGS, finetune
    from kmnist.runs import get_run
    from kmnist.train import train
    base = train(TrainConfig(dataset="tiny10", epochs=6, batch_size=32, seed=0), data_root=data_dir)
    wi = glyphs(np.full(10, 44), 49, seed=5)  # ゐ is K49 class 44: its own bar pattern, unknown to the base
    for image in wi:  # 8 to learn from, 2 held out
        drawings.save(image, None, "ゐ", "?", base.id, base.classes, root=data_dir)
    for image in glyphs(np.full(MIN_DRAWINGS - 2, 45), 49, seed=6):  # too few ゑ: not taught
        drawings.save(image, None, "ゑ", "?", base.id, base.classes, root=data_dir)
    rep = finetune(base.id, epochs=3, data_root=data_dir)
    run = get_run(rep.run)
    chars = [c.char for c in run.classes]
    assert chars == [c.char for c in base.classes] + ["ゐ"], f"exactly ゐ is added, after the old ones: {chars}"
    assert [n.char for n in rep.new] == ["ゐ"] and rep.new[0].index == 10 and rep.new[0].held_out == 2
    assert rep.skipped == MIN_DRAWINGS - 2, "the ゑ drawings are not learned from"
    assert rep.new[0].read_right == 2, f"the held-out ゐ drawings read ゐ: {rep.summary()}"
    assert rep.after.test_accuracy >= rep.before.test_accuracy - TOLERANCE, rep.summary()
    assert run.load_model().output_shape[-1] == len(run.classes) == 11
    export = files.read_json(run.path / EXPORT_FILE)
    assert export.get("state") != "failed" and (run.path / ONNX_FILE).is_file(), export
    out = session(run.path / ONNX_FILE).run(None, {"image": wi[:, :, :, None].astype(np.float32)})[0]
    keras_out = run.load_model().predict(wi[:, :, :, None].astype(np.float32), verbose=0)
    assert out.shape == (10, 11) and np.abs(out - keras_out).max() < 1e-4, "the ONNX export is the grown model"
