"""The command line's --json shapes and its clean failures."""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from kmnist import classes as cls
from kmnist import chatter, datasets, files, runs
from kmnist.cli import main
from kmnist.config import preset
from kmnist.evaluate import VALIDATION_KEYS
from tests.conftest import glyphs, write_dataset


def run_json(capsys, *argv):
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory):
    """One CLI training for the whole module, into a runs dir of its own: (summary, run dir, data dir)."""
    data = tmp_path_factory.mktemp("data")
    write_dataset(data, "tiny10", 10, 30, 10, seed=1)
    runs_root = tmp_path_factory.mktemp("runs")
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        mp.setenv("KMNIST_RUNS_DIR", str(runs_root))
        code = main(["train", "--dataset", "tiny10", "--epochs", "2", "--batch-size", "16", "--data-dir", str(data),
                     "--run-id", "cli-run", "--json"])
    assert code == 0, out.getvalue()
    return json.loads(out.getvalue()), runs_root / "cli-run", data


@pytest.fixture
def trained(trained_once, runs_dir):
    """The module's run, copied into this test's own runs dir (tests activate and list runs)."""
    summary, run_dir, _ = trained_once
    shutil.copytree(run_dir, runs_dir / "cli-run")
    return summary


def test_train_json(trained):
    assert set(trained) >= {"run", "accuracy", "balanced_accuracy", "macro_f1", "train_seconds"}
    assert trained["run"] == "cli-run" and trained["accuracy"] > 0.5, f"two epochs learn easy glyphs: {trained}"


def test_evaluate_json(trained, trained_once, capsys):
    code, rep = run_json(capsys, "evaluate", "--run", "cli-run", "--data-dir", str(trained_once[2]))
    assert code == 0
    assert set(rep) >= {"accuracy", "balanced_accuracy", "macro_f1", "weighted_f1", "classes_present", "per_class",
                        *VALIDATION_KEYS}
    assert rep["accuracy"] == pytest.approx(trained["accuracy"]), "evaluate agrees with the run's own score"
    assert (rep["images"], rep["dataset_images"], rep["classes_present"]) == (100, 100, 10)
    metrics = runs.get_run("cli-run").metrics
    assert [rep[k] for k in VALIDATION_KEYS] == [metrics[k] for k in VALIDATION_KEYS], "the validation scores"
    assert rep["val_accuracy"] > 0.5 and rep["val_loss"] > 0, "the run's own validation split, after learning"
    row = rep["per_class"][0]
    assert set(row) == {"index", "char", "precision", "recall", "f1", "support"} and row["char"] == "あ"


def test_evaluate_on_another_class_table_maps_by_character_or_refuses(trained, trained_once, tmp_path, capsys):
    data = trained_once[2]
    # A 49-class dataset (the K49 table) whose images of あ..こ are tiny10's test images: the run knows 10 of them.
    shutil.copytree(data / "tiny10", tmp_path / "wide" / "tiny10")
    folder = tmp_path / "wide" / "tiny10"
    own = datasets.load("tiny10", data).test
    extra = np.arange(10, 49).repeat(2).astype(np.uint8)  # 78 images of classes the run has never seen
    np.savez_compressed(folder / "tiny10-test-imgs.npz", np.concatenate([own.images, glyphs(extra, 49)]))
    np.savez_compressed(folder / "tiny10-test-labels.npz", np.concatenate([own.labels, extra]))
    (folder / "tiny10_classmap.csv").write_text(cls.classmap_csv(cls.k49_classes()), encoding="utf-8")
    code, rep = run_json(capsys, "evaluate", "--run", "cli-run", "--data-dir", str(tmp_path / "wide"))
    assert code == 0 and (rep["images"], rep["dataset_images"]) == (100, 178), "scored on the characters it knows"
    assert rep["accuracy"] == pytest.approx(trained["accuracy"]), "the same images, the same score"
    # Digits have nothing in common with kana: refused, naming both tables.
    (folder / "tiny10_classmap.csv").write_text(cls.classmap_csv(cls.digit_classes()), encoding="utf-8")
    np.savez_compressed(folder / "tiny10-test-labels.npz", own.labels)
    np.savez_compressed(folder / "tiny10-test-imgs.npz", own.images)
    assert main(["evaluate", "--run", "cli-run", "--data-dir", str(tmp_path / "wide")]) == 2
    err = capsys.readouterr().err
    assert "run cli-run" in err and "dataset tiny10" in err and "Traceback" not in err
    assert "10 classes (あ い う え お か き く け こ)" in err and "10 classes (0 1 2 3 4 5 6 7 8 9)" in err


def test_a_kmnist_run_scores_the_same_on_k49_labels(shared_data, tmp_path, capsys):
    """The shipped KMNIST seed run on real KMNIST test images, labelled once in its own table, once in K49's."""
    from kmnist.evaluate import map_by_character
    images = datasets.load_images("kmnist6k", "test", shared_data)[:1000]
    labels = datasets.load_labels("kmnist6k", "test", shared_data)[:1000]
    kmnist = datasets.load_classes("kmnist6k", shared_data)
    to_k49 = map_by_character(kmnist, cls.k49_classes())
    assert to_k49.tolist() == [4, 6, 12, 17, 20, 25, 30, 35, 41, 46], "お→4 … を→46"
    for name, table, y in (("own", kmnist, labels), ("k49like", cls.k49_classes(), to_k49[labels])):
        (tmp_path / name).mkdir()
        np.savez_compressed(tmp_path / name / f"{name}-test-imgs.npz", images)
        np.savez_compressed(tmp_path / name / f"{name}-test-labels.npz", y.astype(np.uint8))
        (tmp_path / name / f"{name}_classmap.csv").write_text(cls.classmap_csv(table), encoding="utf-8")
    scores = {}
    for name in ("own", "k49like"):
        code, scores[name] = run_json(capsys, "evaluate", "--run", "kmnist6k-seed", "--dataset", name,
                                      "--data-dir", str(tmp_path))
        assert code == 0 and scores[name]["images"] == 1000
    assert scores["k49like"]["accuracy"] == scores["own"]["accuracy"] > 0.5
    assert scores["k49like"]["macro_f1"] == scores["own"]["macro_f1"]
    assert scores["k49like"]["per_class"] == scores["own"]["per_class"], "reported in the run's own table"


def test_train_from_a_config_file(trained, trained_once, tmp_path, capsys):
    config = json.loads((runs.runs_dir() / "cli-run" / runs.CONFIG_FILE).read_text()) | {"epochs": 0}
    (tmp_path / "bad.json").write_text(json.dumps(config))
    assert main(["train", "--config", str(tmp_path / "bad.json"), "--data-dir", str(trained_once[2])]) == 2
    assert "epochs must be at least 1, not 0" in capsys.readouterr().err
    (tmp_path / "torn.json").write_text('{"arch": "se')
    assert main(["train", "--config", str(tmp_path / "torn.json")]) == 2
    assert "torn.json is missing or not a training config" in capsys.readouterr().err


def test_predict_json_both_polarities(trained, tmp_path, capsys):
    glyph = glyphs(np.array([3]), 10)[0]
    dataset_style = tmp_path / "dataset.png"
    Image.fromarray(glyph).save(dataset_style)
    drawing = tmp_path / "drawing.jpg"
    Image.fromarray(255 - glyph).resize((300, 300)).convert("RGB").save(drawing)
    code, out = run_json(capsys, "predict", "--run", "cli-run", str(dataset_style), str(drawing))
    assert code == 0 and [r["file"] for r in out] == [str(dataset_style), str(drawing)]
    for r in out:
        assert len(r["top"]) == 5 and set(r["top"][0]) == {"index", "char", "prob"}
        probs = [g["prob"] for g in r["top"]]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1.0001


def test_predict_reports_bad_files(trained, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert main(["predict", "--run", "cli-run", str(bad)]) == 1
    assert "not a readable" in capsys.readouterr().err


def test_runs_and_activate(trained, capsys):
    code, rows = run_json(capsys, "runs")
    assert code == 0 and rows[0]["id"] == "cli-run" and not rows[0]["active"]
    assert main(["activate", "cli-run"]) == 0
    capsys.readouterr()
    _, rows = run_json(capsys, "runs")
    assert [r["id"] for r in rows if r["active"]] == ["cli-run"]


def test_download_offline_fails_cleanly(tmp_path, monkeypatch, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    release = datasets.OFFICIAL["k49"]
    monkeypatch.setitem(datasets.OFFICIAL, "k49", datasets.OfficialDataset(
        "k49", f"http://127.0.0.1:{port}", release.files, release.title))
    assert main(["download", "k49", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Download failed") and "k49-train-imgs.npz" in err and "Traceback" not in err


def test_missing_dataset_is_a_message_not_a_traceback(tmp_path, capsys):
    assert main(["train", "--dataset", "kmnist", "--data-dir", str(tmp_path)]) == 2
    assert "python -m kmnist download kmnist" in capsys.readouterr().err


def test_datasets_json(data_dir, capsys):
    code, rows = run_json(capsys, "datasets", "--data-dir", str(data_dir))
    by_name = {r["name"]: r for r in rows}
    assert code == 0 and by_name["tiny49"]["trainable"] and not by_name["k49"]["trainable"]


def test_a_preset_brings_its_architecture_and_settings(data_dir, monkeypatch):
    seen = {}

    class Started(Exception):
        pass

    def fake_train(config, **kwargs):  # what training would be asked to do; the k49 smoke training is slow-marked
        seen["config"] = config
        raise Started

    monkeypatch.setattr("kmnist.train.train", fake_train)
    with pytest.raises(Started):
        main(["train", "--preset", "k49", "--dataset", "tiny49", "--epochs", "1", "--data-dir", str(data_dir)])
    assert seen["config"] == preset("k49").replace(dataset="tiny49", epochs=1)
    assert (seen["config"].arch, seen["config"].class_weighting) == ("resnet-bn-wide", "balanced")


def test_finetune_without_drawings_is_one_line_not_a_traceback(data_dir, capsys):
    code = main(["finetune", "--run", "kmnist6k-seed", "--with", "my-drawings", "--data-dir", str(data_dir)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: no drawings to learn from") and "Traceback" not in err, err


PROBING = """WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796649373.697844    8502 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
E0000 00:00:1796649381.252407    8502 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)"""


def test_quiet_log_drops_the_gpu_probing_and_keeps_real_errors():
    log = f"{PROBING}\nepoch 1/2\nE0000 00:00:1.0 1 op_kernel.cc:1] OOM when allocating tensor\nTraceback (most recent call last):"
    assert chatter.quiet_log(log).splitlines() == [
        "epoch 1/2", "E0000 00:00:1.0 1 op_kernel.cc:1] OOM when allocating tensor", "Traceback (most recent call last):"]


@pytest.mark.slow  # a fresh process imports TensorFlow (seconds)
def test_a_command_that_loads_tensorflow_prints_no_start_up_chatter(tmp_path):
    image = tmp_path / "drawing.png"
    Image.fromarray(glyphs(np.array([3]), 10)[0]).save(image)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # the CLI's own default
    done = subprocess.run([sys.executable, "-m", "kmnist", "predict", "--run", "kmnist6k-seed", str(image)],
                          cwd=files.ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{image}: "), done.stdout
    assert done.stderr == "", f"TensorFlow's start-up lines reached the terminal:\n{done.stderr}"


# Pictures imported as drawings

def picture(path, seed: int = 0, size: int = 120):
    """A drawing-style picture (dark ink on white paper) of ゐ's fixture pattern, saved as PNG or JPEG by suffix."""
    ink = glyphs(np.array([44]), 49, seed=seed)[0]
    Image.fromarray(255 - ink).resize((size, size)).convert("RGB").save(path)
    return path


def test_drawings_add_frames_pictures_as_the_canvas_does_and_lists_them(data_dir, runs_dir, capsys, tmp_path):
    from kmnist import drawings
    from kmnist.preprocess import prepare
    run = runs.set_active("kmnist6k-seed")
    files = [str(picture(tmp_path / f"wi{i}.{'jpg' if i % 2 else 'png'}", seed=i)) for i in range(6)]
    code, rows = run_json(capsys, "drawings", "add", "--char", "wi", "--data-dir", str(data_dir), *files)
    assert code == 0 and [r["char"] for r in rows] == ["ゐ"] * 6 and [r["file"] for r in rows] == files
    assert [r["split"] for r in rows] == ["train"] * 4 + ["test", "train"], "every fifth one is held out"
    saved = drawings.drawings(root=data_dir)
    for f, d in zip(files, saved):
        assert np.array_equal(drawings.image(d, root=data_dir), prepare(f, run.framing)), "framed like predict"
        assert drawings.raw_png(d, root=data_dir) is not None
    code, counts = run_json(capsys, "drawings", "list", "--data-dir", str(data_dir))
    assert code == 0 and counts == [{"char": "ゐ", "romaji": "wi", "train": 5, "test": 1}]
    assert main(["drawings", "list", "--data-dir", str(data_dir)]) == 0
    assert "6 drawings of 1 characters" in capsys.readouterr().out


@pytest.mark.parametrize("char", ["A1", "3", "安", "ゐゐ"])
def test_drawings_add_refuses_characters_outside_the_49(char, data_dir, capsys, tmp_path):
    code = main(["drawings", "add", "--char", char, "--data-dir", str(data_dir), str(picture(tmp_path / "a.png"))])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "not one of the 49" in err and err.count("\n") == 1, err
    assert not (data_dir / "my-drawings").exists(), "nothing is saved"


def test_drawings_add_refuses_unreadable_files_and_saves_none(data_dir, capsys, tmp_path):
    good = picture(tmp_path / "good.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "blank.png").write_bytes((lambda b: (Image.new("L", (50, 50), 255).save(b, "PNG"), b.getvalue())[1])(
        io.BytesIO()))
    paths = [str(good), str(tmp_path / "broken.png"), str(tmp_path / "blank.png"), str(tmp_path / "absent.png")]
    code = main(["drawings", "add", "--char", "ゐ", "--data-dir", str(data_dir), *paths])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: 3 of 4 pictures cannot be read") and err.count("\n") == 1, err
    for name in ("broken.png", "blank.png", "absent.png"):
        assert name in err, f"the error names {name}: {err}"
    assert "Traceback" not in err and not any((data_dir / "my-drawings").glob("records/*.json")), "none is saved"


@pytest.mark.slow  # a fine-tune of the module's tiny run: ~15 s
def test_finetune_json_names_the_grown_run(trained_once, capsys, tmp_path, monkeypatch):
    _, run_dir, data = trained_once
    monkeypatch.setenv("KMNIST_RUNS_DIR", str(run_dir.parent))
    pictures = [str(picture(tmp_path / f"wi{i}.png", seed=i, size=28)) for i in range(7)]
    assert main(["drawings", "add", "--char", "ゐ", "--data-dir", str(data), *pictures]) == 0
    capsys.readouterr()
    code, rep = run_json(capsys, "finetune", "--run", "cli-run", "--with", "my-drawings", "--epochs", "1",
                         "--data-dir", str(data))
    grown = runs.get_run(rep["run"])
    assert code == 0 and [n["char"] for n in rep["new"]] == ["ゐ"] and rep["new"][0]["train_drawings"] == 6
    assert [c.char for c in grown.classes] == [c.char for c in runs.get_run("cli-run").classes] + ["ゐ"]
