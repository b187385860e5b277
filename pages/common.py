"""Shared page helpers: the runs to show, cached models and arrays, image grids and missing-data notes.

Models and arrays are cached per file and modification time, so a model activated on the Training
page, or a dataset downloaded meanwhile, shows up on every page at the next rerun, without a restart.
Arrays use cache_resource rather than cache_data: cache_data would copy (unpickle) a 180 MB image
array on every rerun, while these arrays are only ever read.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from kmnist import datasets, figures, runs
from kmnist.classes import ClassInfo
from kmnist.export import ONNX_FILE, onnx_path
from kmnist.predict import OnnxPredictor, Predictor


def stop(message: str) -> None:
    """Say what is missing and how to get it, then end the page here."""
    st.info(message)
    st.stop()


def active_run_or_stop() -> runs.Run:
    run = runs.active_run()
    if run is None:
        stop("There is no active model yet. Train one on the **Training** page (or run "
             "`python -m kmnist train`), then activate it there.")
    if not run.has_model:
        stop(f"The active run {run.id} has no model file ({run.state}). Activate a finished run on the "
             "**Training** page (or with `python -m kmnist activate RUN`).")
    return run


def choose_run(key: str) -> runs.Run:
    """A run picker over every run, preselecting the active model; stops the page when there are none."""
    found = {r.id: r for r in runs.list_runs()}
    if not found:
        stop("There are no training runs yet. Train a model on the **Training** page.")
    ids = list(found)
    active = runs.active_run_id()
    pick = st.selectbox("Run", ids, index=ids.index(active) if active in ids else 0, key=key,
                        format_func=lambda i: found[i].label() + (" · active" if i == active else ""))
    return found[pick]


def _stamp(path: Path) -> float:
    return path.stat().st_mtime


@st.cache_resource(max_entries=3, show_spinner="Loading the model…")
def _model(model_path: str, stamp: float):
    path = Path(model_path).parent
    return runs.Run(path.name, path).load_model()


@st.cache_resource(max_entries=3, show_spinner="Preparing the model…")
def _predictor(model_path: str, stamp: float) -> Predictor | OnnxPredictor:
    import gc
    predictor = OnnxPredictor(model_path) if model_path.endswith(ONNX_FILE) else Predictor(_model(model_path, stamp))
    # Keras' clear_session, which Streamlit calls after every run, ends in gc.collect(): freezing the
    # long-lived objects (TensorFlow, the model, the ONNX session) keeps that collection from walking them.
    gc.freeze()
    return predictor


def model(run: runs.Run):
    """The run's Keras model, loaded once per model file."""
    path = run.path / runs.MODEL_FILE
    return _model(str(path), _stamp(path))


def predictor(run: runs.Run) -> Predictor | OnnxPredictor:
    """The fast single-image predictor of the run's model: its ONNX export when it has one, else Keras."""
    path = onnx_path(run) or run.path / runs.MODEL_FILE
    return _predictor(str(path), _stamp(path))


def _file(name: str, role: str) -> Path | None:
    status = datasets.status(name)
    f = datasets.spec(name).file(role)
    return status.folder / f.name if f is not None and f.name in status.present else None


@st.cache_resource(max_entries=8, show_spinner="Reading the dataset…")
def _array(name: str, split: str, kind: str, root: str, stamp: float) -> np.ndarray:
    load = datasets.load_images if kind == "imgs" else datasets.load_labels
    arr = load(name, split, Path(root))
    arr.flags.writeable = False  # shared between sessions: nobody may change it in place
    return arr


def array(name: str, split: str, kind: str) -> np.ndarray | None:
    """A dataset's images ("imgs") or labels ("labels") for a split, or None when the file is absent."""
    path = _file(name, f"{split}-{kind}")
    if path is None:
        return None
    return _array(name, split, kind, str(datasets.data_dir()), _stamp(path))


def missing_note(name: str, split: str, kind: str = "imgs") -> str:
    """Why an array is unavailable and how to get it."""
    f = datasets.spec(name).file(f"{split}-{kind}")
    return datasets.missing_message(datasets.status(name), [f.name if f else f"{split}-{kind}"])


@st.cache_data(max_entries=16)
def _samples(labels_path: str, stamp: float, name: str, split: str, num_classes: int, k: int) -> list[np.ndarray]:
    return figures.samples_per_class(array(name, split, "labels"), num_classes, k)


def samples(name: str, split: str, num_classes: int, k: int) -> list[np.ndarray] | None:
    """Positions of up to k example images per class, or None when the labels are absent."""
    path = _file(name, f"{split}-labels")
    return None if path is None else _samples(str(path), _stamp(path), name, split, num_classes, k)


def show_strip(images: np.ndarray, caption: str, cols: int | None = None, factor: int = 2) -> None:
    """A row (or grid) of small images as one sharp picture."""
    if len(images) == 0:
        st.caption(f"{caption}: no images")
        return
    st.image(figures.tile(images, cols or len(images), factor=factor), caption=caption)


def class_grid(images: np.ndarray, picks: list[np.ndarray], classes: list[ClassInfo], cols: int = 4,
               factor: int = 2) -> None:
    """Example images of each class, one captioned strip per class, `cols` classes a row."""
    for start in range(0, len(classes), cols):
        for column, c in zip(st.columns(cols), classes[start: start + cols]):
            with column:
                show_strip(images[picks[c.index]], f"{c.label()} · class {c.index}", cols=4, factor=factor)


def test_split(run: runs.Run) -> tuple[np.ndarray, np.ndarray, np.ndarray] | str:
    """(test images, true labels, predicted labels) of a run's test set, or why they are unavailable."""
    name = run.config.dataset
    y_pred = run.test_predictions()
    if y_pred is None:
        return f"Run {run.id} saved no test predictions ({run.state})."
    y_true = array(name, "test", "labels")
    if y_true is None:
        return missing_note(name, "test", "labels")
    if len(y_true) != len(y_pred):
        return (f"The {name} test set here has {len(y_true)} images, but run {run.id} predicted "
                f"{len(y_pred)}: it was evaluated on a different copy of {name}.")
    images = array(name, "test", "imgs")
    if images is None:
        return missing_note(name, "test")
    return images, y_true, y_pred


# Session key under which the Draw page keeps its last prepared drawing (uint8 28x28, dataset style);
# the Embedding page places it on the maps.
LAST_DRAWING = "last_drawing"
