"""What the pages load once and share: models, predictors, dataset arrays and sample picks.

Everything is cached per file and modification time, so a model activated on the Training page, or a
dataset downloaded meanwhile, shows up on every page at the next rerun, without a restart. Anything
derived from a run's model is cached with `hash_funcs=BY_MODEL`: Streamlit then keys the run argument
by its model files' versions. Arrays use cache_resource rather than cache_data: cache_data would copy
(unpickle) a 180 MB image array on every rerun, while these arrays are only ever read.
"""
from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import streamlit as st

from kmnist import datasets, figures, runs, unknown
from kmnist.export import ONNX_FILE, onnx_path
from kmnist.predict import OnnxPredictor, Predictor


def _stamp(path: Path) -> float:
    """When a file last changed; 0 when it is absent."""
    return path.stat().st_mtime if path.is_file() else 0.0


def model_version(run: runs.Run) -> tuple[str, float, float, float]:
    """A run as caches tell it apart: its folder and when its model, its class table (which the model is checked
    against) and its ONNX export last changed."""
    return str(run.path), *(_stamp(run.path / f) for f in (runs.MODEL_FILE, runs.CLASSES_FILE, ONNX_FILE))


BY_MODEL = {runs.Run: model_version}  # hash_funcs for caches that take a run and derive from its model


def _settle(resource):
    """Collect once, then freeze what is alive (gc.freeze), so later collections skip it; returns resource.

    Every stroke reruns the page, and after each run full collections walk every object alive: Streamlit's
    own (runner.postScriptGC) and, once any page has imported Keras, the one in keras.backend.clear_session(),
    which Streamlit calls after every run. That is the libraries, models and arrays: 130,000 objects without
    TensorFlow, 400,000 with it, 0.3-2.8 s a collection on the busy 2-core machine. Frozen objects are
    skipped, so those collections walk only what the runs made since (BENCHMARKS.md, "Many people drawing
    at once"). Called once per loaded resource; unfreezing first lets this one collection free a model
    evicted from the cache.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    return resource


@st.cache_resource(max_entries=3, hash_funcs=BY_MODEL, show_spinner="Loading the model…")
def _model(run: runs.Run) -> tuple[object | None, str]:
    """(model, "") or (None, why it cannot be used): a broken model is cached too, so it is not retried per rerun."""
    try:
        return _settle(run.load_model()), ""
    except runs.RunError as e:
        return None, str(e)


def _checked_model(run: runs.Run):
    """The run's model, or ModelError saying why it cannot be used."""
    net, problem = _model(run)
    if problem:
        raise runs.ModelError(problem)
    return net


@st.cache_resource(max_entries=3, hash_funcs=BY_MODEL, show_spinner="Preparing the model…")
def predictor(run: runs.Run) -> Predictor | OnnxPredictor:
    """The fast single-image predictor of the run's model: its ONNX export when it has one, else Keras."""
    onnx = onnx_path(run)
    if onnx is None:
        return _settle(Predictor(_checked_model(run), unknown.load(run)))
    run.check_model_file()  # a broken model.keras breaks the other pages: say so here too, not only there
    try:
        found = OnnxPredictor(str(onnx))
    except Exception as e:  # noqa: BLE001 - the file is outside input: any failure to read it is its fault
        raise runs.ModelError(f"the {onnx.name} of run {run.id!r} cannot be loaded ({type(e).__name__})") from None
    if found.outputs != len(run.classes):
        raise runs.ModelError(f"run {run.id!r} does not match its class table: its {onnx.name} gives "
                              f"{found.outputs} outputs but {runs.CLASSES_FILE} lists {len(run.classes)} classes")
    return _settle(found)


def model(run: runs.Run):
    """The run's Keras model, loaded and checked once per model file; a broken one ends the page with why."""
    try:
        return _checked_model(run)
    except runs.ModelError as e:
        st.warning(str(e))
        st.stop()


def warm() -> None:
    """Load the predictor of the model the pages use, once per server, before the first stroke needs it.

    A model that cannot be used is left for the page that uses it to report."""
    try:
        runs.load_active(load=predictor)
    except runs.ModelError:
        return


def _file(name: str, role: str) -> Path | None:
    status = datasets.status(name)
    f = datasets.spec(name).file(role)
    return status.folder / f.name if f is not None and f.name in status.present else None


@st.cache_resource(max_entries=8, show_spinner="Reading the dataset…")
def _array(name: str, split: str, kind: str, root: str, stamp: float) -> np.ndarray:
    load = datasets.load_images if kind == "imgs" else datasets.load_labels
    arr = load(name, split, Path(root))
    arr.flags.writeable = False  # shared between sessions: nobody may change it in place
    return _settle(arr)


def array(name: str, split: str, kind: str) -> np.ndarray | None:
    """A dataset's images ("imgs") or labels ("labels") for a split, or None when the file is absent."""
    path = _file(name, f"{split}-{kind}")
    if path is None:
        return None
    return _array(name, split, kind, str(datasets.data_dir()), _stamp(path))


@st.cache_data(max_entries=16)
def _samples(labels_path: str, stamp: float, name: str, split: str, num_classes: int, k: int) -> list[np.ndarray]:
    return figures.samples_per_class(array(name, split, "labels"), num_classes, k)


def samples(name: str, split: str, num_classes: int, k: int) -> list[np.ndarray] | None:
    """Positions of up to k example images per class, or None when the labels are absent."""
    path = _file(name, f"{split}-labels")
    return None if path is None else _samples(str(path), _stamp(path), name, split, num_classes, k)
