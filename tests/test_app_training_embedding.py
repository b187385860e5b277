"""AppTests of the Embedding and Training pages: they run, show what they must, and degrade with a reason."""
from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from kmnist import embed, files, jobs, runs
from kmnist.config import TrainConfig, recipe
from kmnist.train import train
from tests.apptest import open_page, texts


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A private map cache, so only the shipped maps and what a test computes are found."""
    monkeypatch.setenv("KMNIST_CACHE_DIR", str(tmp_path / "cache"))


def charts(at: AppTest) -> list[list[str]]:
    """The plotly figures on the page, each as its trace names."""
    return [[t.get("name") for t in json.loads(c.proto.spec)["data"]] for c in at.get("plotly_chart")]


# Embedding


def test_embedding_on_real_data_colours_by_class_and_places_the_drawing(shared_data, monkeypatch, cache_dir):
    monkeypatch.setenv("KMNIST_DATA_DIR", str(shared_data))
    at = open_page("embedding")
    assert [s.value for s in at.main.subheader] == ["Kuzushiji (kmnist6k)", "MNIST digits"]
    specs = charts(at)
    assert len(specs) == 2, "Kuzushiji beside MNIST"
    assert specs[0][:2] == ["お o", "き ki"] and specs[1][:2] == ["0 zero", "1 one"], "one legend entry per class"
    assert "16,000 points: all 6,000 train and 10,000 test images of kmnist6k" in texts(at.caption)
    assert not at.info, "with the data here nothing is missing"

    drawing = np.zeros((28, 28), np.uint8)
    drawing[6:22, 12:16] = 255
    at.session_state["last_drawing"] = drawing
    at.run()
    assert not at.exception, at.exception
    assert "your last drawing" in charts(at)[0] and "your last drawing" not in charts(at)[1]


def test_embedding_without_data_still_draws_the_shipped_maps(tmp_path, monkeypatch, cache_dir):
    monkeypatch.setenv("KMNIST_DATA_DIR", str(tmp_path / "no-data"))
    at = open_page("embedding")
    assert len(charts(at)) == 2, "the shipped positions are drawn without the data"
    notes = texts(at.info)
    assert "colours by class and the images come from the data" in notes and "kmnist6k" in notes
    at.radio(key="embed-space").set_value("features").run()
    assert not at.exception, at.exception
    assert charts(at) or "images are not here" in texts(at.info), "a features map, or why there is none"


def fake_compute(fail: bool):
    """Stands in for UMAP: reports a stage as compute() does, takes a moment, then maps or fails."""

    def compute(config, root=None, progress=None, model=None):
        progress("UMAP of 16,000 points: layout epoch 57/200", 0.93)
        time.sleep(1.2)  # long enough for the page to poll and redraw its bar
        if fail:
            raise embed.EmbedError("no space left for the map")
        return embed.Embedding(config, np.random.default_rng(0).normal(size=(16000, 2)).astype(np.float32),
                               np.arange(16000), (6000, 10000), ("train", "test"), 61.0)

    return compute


@pytest.mark.parametrize("fail", [False, True])
def test_embedding_computes_a_map_showing_its_progress_and_estimate(shared_data, monkeypatch, cache_dir, tmp_path,
                                                                     fail):
    monkeypatch.setenv("KMNIST_DATA_DIR", str(shared_data))
    monkeypatch.setattr(embed, "SHIPPED", tmp_path / "no-shipped-maps")  # so no kmnist6k map is stored
    monkeypatch.setattr(embed, "compute", fake_compute(fail))
    at = open_page("embedding")
    assert "Computing one takes about 38 s (estimated from a rate measured on 2 cores at 2.4 ms per point, " \
           "for 16,000 points)" in texts(at.info)
    at.button(key=next(b.key for b in at.button if b.key.startswith("compute-kmnist6k"))).click().run()
    if fail:
        assert "Computing the map stopped: no space left for the map" in texts(at.error)
        assert not at.exception, "a failed map is a message, not a traceback"
        bar = at.get("progress")[0].proto
        assert bar.text.startswith("UMAP of 16,000 points: layout epoch 57/200 · 1 s elapsed · about 3"), bar.text
        assert bar.value == 93, "the stage's share of the work"
        assert not charts(at)
    else:
        assert not at.exception, at.exception
        assert "Map computed in 1 min 01 s (estimated 38 s)." in texts(at.success)
        assert len(charts(at)) == 1 and charts(at)[0][0] == "お o", "the new map is drawn, coloured by class"
        at.run()
        assert not at.success, "the computing time is said once"


@pytest.mark.slow
def test_embedding_computes_a_missing_features_map(data_dir, monkeypatch, cache_dir):
    monkeypatch.setenv("KMNIST_DATA_DIR", str(data_dir))
    run = train(TrainConfig(dataset="tiny10", epochs=1, batch_size=32), data_root=data_dir)
    runs.set_active(run.id)
    at = open_page("embedding")
    at.radio(key="embed-space").set_value("features").run()
    assert "No map of tiny10 (features) is stored yet" in texts(at.info)
    at.button(key=next(b.key for b in at.button if b.key.startswith("compute-"))).click().run()
    assert not at.exception, at.exception
    specs = charts(at)
    assert len(specs) == 1 and specs[0][0] == "あ a", "the computed map is drawn, coloured by class"
    assert "400 points: all 300 train and 100 test images of tiny10" in texts(at.caption)


# Training


def test_training_read_only(monkeypatch):
    monkeypatch.setenv("KMNIST_ALLOW_TRAINING", "0")
    at = open_page("training")
    assert "read-only" in texts(at.info)
    start = next(b for b in at.button if b.label == "Start training")
    assert start.disabled, "the form cannot start a training"
    assert at.selectbox[0].disabled and at.number_input[0].disabled, "the whole form is greyed out"


def test_training_without_data_says_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("KMNIST_DATA_DIR", str(tmp_path / "no-data"))
    at = open_page("training")
    assert "No dataset here has training and test images" in texts(at.info)
    assert next(b for b in at.button if b.label == "Start training").disabled


def test_training_shows_an_interrupted_job(runs_dir):
    run_dir = runs_dir / "lost-run"
    run_dir.mkdir(parents=True)
    files.write_json(run_dir / runs.STATUS_FILE, {"state": "running", "pid": 2**22 + 7, "epoch": 2, "epochs": 5})
    at = open_page("training")
    assert "Run lost-run: interrupted" in texts(at.subheader)
    assert "is gone but its run never finished" in texts(at.error)


def test_training_shows_a_running_job_live(runs_dir):
    run_dir = runs_dir / "live-run"
    run_dir.mkdir(parents=True)
    files.write_json(run_dir / runs.STATUS_FILE, {  # as train.py writes it mid-epoch; this process plays the trainer
        "state": "running", "pid": os.getpid(), "epoch": 2, "epochs": 4, "batch": 5, "batches": 10, "eta_s": 75,
        "metrics": {"loss": 0.5, "accuracy": 0.8}, "history": {"loss": [0.9], "accuracy": [0.6]}})
    at = open_page("training")
    assert "Run live-run: running" in texts(at.subheader)
    bar = at.get("progress")[0].proto
    assert bar.text == "epoch 2/4 · batch 5/10 · about 1 min 15 s left" and bar.value == 37, "15 of 40 batches"
    trace = next(t for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
                 if t.get("name") == "this epoch so far")
    assert trace["x"] == [1.5] and trace["y"] == [0.5], "the running epoch's loss, halfway through epoch 2"
    assert next(b for b in at.button if b.label == "Start training").disabled, "one training at a time"


@pytest.mark.parametrize("arch", ["seed", "resnet-bn", "resnet-bn-wide"])
def test_each_architecture_starts_with_its_recipe(data_dir, monkeypatch, arch):
    monkeypatch.setenv("KMNIST_DATA_DIR", str(data_dir))
    asked = []
    monkeypatch.setattr(jobs, "start", lambda config: asked.append(config) or "asked-run")
    at = open_page("training")
    at.selectbox[0].set_value("tiny10")
    at.selectbox[1].set_value(arch)
    at.number_input[0].set_value(2)
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert asked == [recipe(arch).replace(dataset="tiny10", epochs=2)], "the form's choices over the arch's recipe"
    assert asked[0].arch == arch and (asked[0].optimizer == "adadelta") == (arch == "seed")


@pytest.mark.slow
def test_training_start_follow_and_activate(data_dir, monkeypatch, runs_dir):
    monkeypatch.setenv("KMNIST_DATA_DIR", str(data_dir))
    at = open_page("training")
    at.selectbox[0].set_value("tiny10")
    at.number_input[0].set_value(1)
    at.button[0].click().run()
    assert not at.exception, at.exception
    job = jobs.latest()
    assert job is not None and job.run_id in texts(at.subheader)
    assert next(b for b in at.button if b.label == "Start training").disabled, "one training at a time"
    deadline = time.time() + 180
    while jobs.get(job.run_id).active and time.time() < deadline:
        time.sleep(0.5)
    at.run()  # what the polling fragment shows once the job is done
    assert f"Run {job.run_id}: completed" in texts(at.subheader), jobs.read_log(jobs.get(job.run_id))
    assert "Test accuracy" in [m.label for m in at.metric]
    at.button(key="activate").click().run()
    assert runs.active_run_id() != job.run_id and "anyway?" in texts(at.warning), \
        "a tiny run scores below the shipped default: the page asks first"
    at.button(key="activate-yes").click().run()
    assert runs.active_run_id() == job.run_id
    assert "is the active model" in texts(at.success)
