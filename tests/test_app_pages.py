"""The app's Draw, Dataset, Evaluation and Weak classes pages under Streamlit's AppTest.

Each test runs app.py (the frame) and switches to a page. The model is the shipped seed run,
activated explicitly so the tests do not depend on which run is the shipped default.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kmnist import datasets, files, runs
from tests.apptest import captions, metric, open_page, texts
from tests.conftest import SEED_RUN, png

HINT = "Draw a character on the canvas"


@pytest.fixture
def real_data(shared_data, monkeypatch) -> Path:
    monkeypatch.setenv("KMNIST_DATA_DIR", str(shared_data))
    return shared_data


# Draw


def test_sidebar_shows_the_active_model_and_data_status(seed_run, no_data):
    at = open_page()
    sidebar = texts(at.sidebar.markdown) + texts(at.sidebar.caption)
    assert SEED_RUN in sidebar, sidebar
    assert "お き す つ な は ま や れ を" in sidebar, "the sidebar should list the 10 characters the model knows"
    assert "k49" in sidebar and str(no_data) in sidebar, sidebar


def test_draw_without_a_drawing_shows_the_hint_and_no_prediction(seed_run, no_data):
    at = open_page()
    assert HINT in texts(at.info)
    assert not [m for m in at.metric if m.label == "Prediction"]


def test_draw_predicts_an_injected_drawing(seed_run, no_data):
    drawing = np.full((200, 200, 4), 255, np.uint8)  # white, opaque, like the canvas
    drawing[40:160, 95:110, :3] = 0  # a vertical bar
    drawing[60:75, 50:150, :3] = 0  # crossed near the top
    at = open_page(draw_injected_image=drawing)
    chars = [c.char for c in seed_run.classes]
    assert metric(at, "Prediction").value in chars
    assert at.get("plotly_chart"), "the top-5 chart is missing"
    assert "What the model sees" in captions(at), "the 28x28 input is not shown"
    assert "Nearest training images" in captions(at), "without data the shipped forms stand in for the examples"
    seen = at.session_state["last_drawing"]  # kept for the Embedding page
    assert seen.shape == (28, 28) and seen.dtype == np.uint8


def test_draw_reads_a_real_test_image_right_and_shows_training_examples(seed_run, real_data):
    images = datasets.load_images("kmnist6k", "test", real_data)
    labels = datasets.load_labels("kmnist6k", "test", real_data)
    i = int(np.flatnonzero(seed_run.test_predictions() == labels)[0])  # one the model gets right
    at = open_page(draw_injected_image=images[i])
    assert metric(at, "Prediction").value == seed_run.classes[labels[i]].char
    assert len(at.image) >= 6, "expected the model input plus training images of the 5 classes"


def test_draw_upload_of_a_bad_file_says_so(seed_run, no_data):
    at = open_page()
    at.file_uploader(key="upload").upload("note.png", b"this is not an image", "image/png")
    at.run()
    assert not at.exception
    assert "not a readable PNG or JPEG" in texts(at.error)
    assert "Reading" not in texts(at.caption), "no drawing is read, so no caption says one is"


def test_draw_upload_of_a_picture_predicts(seed_run, no_data):
    picture = np.full((120, 90), 250, np.uint8)
    picture[20:100, 40:52] = 10  # dark ink on light paper
    at = open_page()
    at.file_uploader(key="upload").upload("char.png", png(picture), "image/png")
    at.run()
    assert not at.exception and not at.error
    assert metric(at, "Prediction").value in [c.char for c in seed_run.classes]


# Dataset


def test_dataset_without_data_says_how_to_get_it(no_data):
    at = open_page("dataset")
    info = texts(at.info)
    assert "No dataset is in" in info and "KMNIST_DATA_DIR" in info
    labels = [b.label for b in at.button]
    assert any("k49" in label for label in labels), f"no download button for k49: {labels}"


def test_dataset_download_failure_is_a_clear_message(no_data, monkeypatch):
    def offline(name, root=None, progress=None, **kwargs):
        progress(f"{name}-train-labels.npz", 0, 100)
        raise datasets.DataMissingError("Download failed: cannot reach codh.rois.ac.jp")
    monkeypatch.setattr(datasets, "download", offline)
    at = open_page("dataset")
    next(b for b in at.button if "(k49)" in b.label).click().run()
    assert not at.exception
    assert "cannot reach codh.rois.ac.jp" in texts(at.error)


def test_dataset_opens_on_images_and_counts_k49_from_labels(real_data):
    at = open_page("dataset")
    assert at.selectbox(key="dataset_name").value == "kmnist", "the first dataset whose images are here"
    assert at.radio(key="dataset_split").value == "test", "kmnist has only its test images here"
    table = at.dataframe[0].value
    assert not table.isin(["None"]).any().any() and not table.isna().any().any(), table
    assert len(at.image) == 10, "one example strip per kmnist class"
    at.radio(key="dataset_split").set_value("train").run()
    caption = texts(at.caption)
    assert "every class has 6,000" in caption and "train images themselves are not here" in caption, caption
    at.selectbox(key="dataset_name").select("k49").run()
    assert not at.exception
    caption = texts(at.caption)
    assert "232,365 train labels" in caption and "(6,000)" in caption, caption
    assert "missing k49-train-imgs.npz" in texts(at.info), "K49 has no images here; the page should say so"
    assert "Dataset** page" in texts(at.info), "the note says what to do in the app"


# Evaluation


def test_evaluation_scores_matrix_and_cell_images(seed_run, real_data):
    at = open_page("evaluation")
    assert metric(at, "Accuracy").value == f"{seed_run.metrics['accuracy']:.2%}"
    for label in ("Balanced accuracy", "Macro F1"):
        metric(at, label)
    assert len(at.dataframe) >= 2, "expected the classification report and the layer table"
    assert len(at.get("plotly_chart")) == 2, "expected the confusion matrix and the training history"
    cell = texts(at.markdown)
    assert "test images of" in cell and at.image, "the default cell's test images are missing"
    true_box = next(s for s in at.selectbox if s.label == "True class")
    pred_box = next(s for s in at.selectbox if s.label == "Predicted class")
    true_box.select(4)
    pred_box.select(8)
    at.run()
    cm = seed_run.report.confusion_matrix
    assert f"**{cm[4, 8]:,}** test images of な na were predicted as れ re" in texts(at.markdown)
    assert "2,380,938 parameters" in texts(at.caption)


def test_evaluation_without_data_keeps_scores_and_explains_images(seed_run, no_data):
    at = open_page("evaluation")
    metric(at, "Accuracy")
    assert "need the test set" in texts(at.info)
    assert not at.image


def test_evaluation_normalised_matrix(seed_run, no_data):
    at = open_page("evaluation")
    at.toggle(key="eval_normalise").set_value(True).run()
    assert not at.exception
    assert at.get("plotly_chart")


# Weak classes


def test_weak_classes_open_on_the_weakest_of_the_seed_model(seed_run, real_data):
    at = open_page("weak_classes")
    weak_table = at.dataframe[0].value
    f1 = sorted(c.f1 for c in seed_run.report.per_class)
    assert list(weak_table["f1"]) == pytest.approx(f1[:5]), "opens on the 5 lowest F1, weakest first"
    assert weak_table["char"].iloc[0] == "な", "な is the seed model's weakest class"
    assert "read as れ re" in captions(at), "な's commonest confusion (れ) should be shown"
    assert len(at.image) >= 4, "training images of な and images of its three confusions"
    assert SEED_RUN in at.dataframe[1].value.index, "the across-runs table should list the seed run"
    at.number_input(key="weak_threshold").set_value(0.8).run()
    assert list(at.dataframe[0].value["char"]) == ["な"], "the only class under F1 0.8 is な"


def test_weak_classes_filters(seed_run, no_data):
    at = open_page("weak_classes")
    at.number_input(key="weak_threshold").set_value(0.0).run()
    assert "No class of" in texts(at.info)
    at.number_input(key="weak_threshold").set_value(1.0).run()
    at.number_input(key="weak_k").set_value(2).run()
    assert len(at.dataframe[0].value) == 2
    assert "need the test set" in texts(at.info) and not at.image


def fake_k49_run(runs_dir: Path, run_id: str = "k49-fake") -> runs.Run:
    """A finished 49-class run with scores but no model file, as another machine might leave it."""
    from kmnist import classes as cls
    from kmnist.config import TrainConfig
    from kmnist.evaluate import report
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(49), 20)
    y_pred = np.where(rng.random(len(y)) < 0.8, y, rng.integers(0, 49, len(y)))
    path = runs_dir / run_id
    path.mkdir(parents=True)
    files.write_json(path / runs.CONFIG_FILE, TrainConfig(dataset="k49").to_json())
    files.write_json(path / runs.CLASSES_FILE, cls.to_json(cls.k49_classes()))
    files.write_json(path / runs.METRICS_FILE, report(y, y_pred, cls.k49_classes()).to_json())
    files.write_json(path / runs.STATUS_FILE, {"state": "completed"})
    return runs.get_run(run_id)


def test_pages_handle_a_49_class_run_without_model_or_images(seed_run, runs_dir, real_data):
    run = fake_k49_run(runs_dir)
    at = open_page("evaluation")
    at.selectbox(key="eval_run").select(run.id).run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.dataframe[0].value) == 49
    assert "has no saved model" in texts(at.info) and "saved no test predictions" in texts(at.info)
    at.switch_page("pages/weak_classes.py").run()
    at.selectbox(key="weak_run").select(run.id).run()
    assert not at.exception, [e.value for e in at.exception]
    across = at.dataframe[1].value
    assert {run.id, SEED_RUN} <= set(across.index), "both runs know some of the weak characters"


def test_draw_when_the_active_run_has_no_model(runs_dir, no_data):
    run = fake_k49_run(runs_dir)
    (runs_dir / "ACTIVE").write_text(run.id)  # set_active refuses runs without a model; another tool may not
    drawing = np.zeros((200, 200), np.uint8)
    drawing[40:160, 90:110] = 255
    at = open_page(draw_injected_image=drawing)
    default = runs.shipped_default()
    warning = texts(at.warning)
    assert f"run '{run.id}' has no model.keras" in warning and f"shipped default {default.id}" in warning, warning
    assert len(at.metric) == 1, "the page still answers, with the shipped default"
