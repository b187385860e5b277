"""Shared page helpers: the runs to show, cached models and arrays, image grids and missing-data notes.

Models and arrays are cached per file and modification time, so a model activated on the Training
page, or a dataset downloaded meanwhile, shows up on every page at the next rerun, without a restart.
Arrays use cache_resource rather than cache_data: cache_data would copy (unpickle) a 180 MB image
array on every rerun, while these arrays are only ever read.
"""
from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import streamlit as st

from kmnist import datasets, figures, jobs, runs, unknown
from kmnist.classes import ClassInfo
from kmnist.export import onnx_path
from kmnist.predict import OnnxPredictor, Predictor


FRAMED = "framed_by_app"  # session key app.py sets right before it runs a page


def enter() -> None:
    """A page's first line: make sure app.py's frame (page config, menu, sidebar) is around it.

    A folder named pages/ beside the entry script is Streamlit's legacy multipage layout, which Streamlit
    follows until st.navigation is first called in the server process (under AppTest: in each run). So a
    deep link that is the first request after a start (say /evaluation) runs its page alone, without app.py.
    Then the page runs app.py (whose st.navigation call ends the legacy layout), which runs the page framed,
    and this bare run stops there.
    """
    if not st.session_state.pop(FRAMED, False):
        from app import main
        main()
        st.stop()


def stop(message: str) -> None:
    """Say what is missing and how to get it, then end the page here."""
    st.info(message)
    st.stop()


def active_run_or_stop() -> runs.Run:
    """The run whose model the page uses: the active one, or, when its model cannot be loaded, the shipped
    default under a one-line warning naming the run and what is wrong."""
    try:
        active = runs.load_active(load=predictor)  # checks the model it will answer with (ONNX: no Keras)
    except runs.ModelError as e:
        stop(f"{e}. Activate a working run on the **Training** page (or with `python -m kmnist activate RUN`).")
    if active is None:
        stop("There is no active model yet. Train one on the **Training** page (or run "
             "`python -m kmnist train`), then activate it there.")
    if active.problem:
        st.warning(active.problem)
    return active.run


def progress(run: runs.Run) -> str:
    """How far a run's training got, e.g. "epoch 1 of 3, batch 10 of 43"; "" before it has started."""
    return runs.stopped_at(run.status) if run.status.get("epochs") else ""


def scores(run: runs.Run) -> tuple[str, dict[str, float]]:
    """The score runs are ranked by (balanced accuracy for the 49 K49 classes, else accuracy) and its value on
    the validation and test splits the run was scored on."""
    m = run.metrics
    key = "balanced_accuracy" if len(m.get("per_class") or []) == 49 else "accuracy"
    found = {split: m.get(prefix + key) for split, prefix in (("validation", "val_"), ("test", ""))}
    return key.replace("_", " "), {k: v for k, v in found.items() if isinstance(v, (int, float))}


def score_words(run: runs.Run) -> str:
    """E.g. "validation accuracy 98.5% · test 96.8%"; empty for a run without scores."""
    name, found = scores(run)
    return " · ".join(f"{split}{' ' + name if i == 0 else ''} {v:.1%}" for i, (split, v) in enumerate(found.items()))


def run_label(run: runs.Run, active_id: str | None) -> str:
    """A run as every picker and table names it: id, state, how far it got, its scores, and whether it is active."""
    parts = [run.id, run.state, progress(run), score_words(run), "active" if run.id == active_id else ""]
    return " · ".join(p for p in parts if p)


def choose_run(key: str) -> runs.Run:
    """A run picker over every run, preselecting the active model; stops the page when there are none."""
    found = {r.id: r for r in runs.list_runs()}
    if not found:
        stop("There are no training runs yet. Train a model on the **Training** page.")
    ids = list(found)
    active = runs.active_run_id()
    pick = st.selectbox("Run", ids, index=ids.index(active) if active in ids else 0, key=key,
                        format_func=lambda i: run_label(found[i], active))
    return found[pick]


def lower_score(candidate: runs.Run, active: runs.Run) -> str | None:
    """E.g. "validation accuracy 98.5% → 93.5%" when the candidate scores lower than the active run on the first
    split both were scored on (validation before test: choices cite validation); None when it does not."""
    name, mine = scores(candidate)
    _, theirs = scores(active)
    for split in ("validation", "test"):
        if split in mine and split in theirs:
            return f"{split} {name} {theirs[split]:.1%} → {mine[split]:.1%}" if mine[split] < theirs[split] else None
    return None


def activation(run: runs.Run, allowed: bool, key: str, label: str = "Make this the active model") -> None:
    """A button that makes `run` the model every page uses, asking first when it scores lower than the active one."""
    active = runs.active_run()
    if active is not None and active.id == run.id:
        st.success(f"{run.id} is the active model: every page uses it.")
        return
    if not run.has_model:
        st.caption(f"{run.id} saved no model ({run.state}), so it cannot be made the active model.")
        return
    asking = f"{key}-confirm"
    if allowed and st.session_state.get(asking) == run.id:
        st.warning(f"{lower_score(run, active)}: make {run.id} the active model anyway?")
        yes, no = st.columns(2)
        if yes.button("Make it active anyway", key=f"{key}-yes", type="primary"):
            _activate(run, key)
        if no.button(f"Keep {active.id}", key=f"{key}-no"):
            del st.session_state[asking]
            st.rerun()
        return
    if st.button(label, key=key, type="primary", disabled=not allowed,
                 help=None if allowed else "Read-only here: activating models is turned off"):
        if active is not None and lower_score(run, active):
            st.session_state[asking] = run.id
            st.rerun()
        _activate(run, key)


def _activate(run: runs.Run, key: str) -> None:
    st.session_state.pop(f"{key}-confirm", None)
    try:
        runs.set_active(run.id)
    except (ValueError, LookupError) as e:  # the run is gone, or its model does not load or fit its classes
        st.error(f"Cannot make {run.id} the active model: {e}")
        return
    st.rerun()  # the whole app, so the sidebar and every page switch to it now


def _stamp(path: Path) -> float:
    return path.stat().st_mtime


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


def _stamps(run: runs.Run) -> tuple[float, float]:
    """When the model and the class table it is checked against last changed (0 when absent)."""
    return tuple(_stamp(p) if p.is_file() else 0.0 for p in (run.path / runs.MODEL_FILE, run.path / runs.CLASSES_FILE))


@st.cache_resource(max_entries=3, show_spinner="Loading the model…")
def _model(run_dir: str, stamps: tuple[float, float]) -> tuple[object | None, str]:
    """(model, "") or (None, why it cannot be used): a broken model is cached too, so it is not retried per rerun."""
    path = Path(run_dir)
    try:
        return _settle(runs.Run(path.name, path).load_model()), ""
    except runs.RunError as e:
        return None, str(e)


def _checked_model(run: runs.Run):
    """The run's model, or ModelError saying why it cannot be used."""
    net, problem = _model(str(run.path), _stamps(run))
    if problem:
        raise runs.ModelError(problem)
    return net


@st.cache_resource(max_entries=3, show_spinner="Preparing the model…")
def _predictor(run_dir: str, stamps: tuple[float, float], onnx_stamp: float) -> Predictor | OnnxPredictor:
    path = Path(run_dir)
    run = runs.Run(path.name, path)
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


def predictor(run: runs.Run) -> Predictor | OnnxPredictor:
    """The fast single-image predictor of the run's model: its ONNX export when it has one, else Keras."""
    onnx = onnx_path(run)
    return _predictor(str(run.path), _stamps(run), _stamp(onnx) if onnx else 0.0)


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


def missing_note(name: str, split: str, kind: str = "imgs") -> str:
    """Why an array is unavailable and what to do about it in the app."""
    status = datasets.status(name)
    f = datasets.spec(name).file(f"{split}-{kind}")
    what = f.name if f else f"the {split} {kind}"
    if jobs.public_mode():
        return f"{name} has no {what} on this server."
    how = ("download it on the **Dataset** page" if status.official
           else f"copy the {name}/ dataset folder into the data dir")
    return (f"{name} is missing {what} in `{status.folder}`: {how}, or start the app with `KMNIST_DATA_DIR` "
            f"pointing at a folder that holds {name}/.")


@st.cache_data(max_entries=16)
def _samples(labels_path: str, stamp: float, name: str, split: str, num_classes: int, k: int) -> list[np.ndarray]:
    return figures.samples_per_class(array(name, split, "labels"), num_classes, k)


def samples(name: str, split: str, num_classes: int, k: int) -> list[np.ndarray] | None:
    """Positions of up to k example images per class, or None when the labels are absent."""
    path = _file(name, f"{split}-labels")
    return None if path is None else _samples(str(path), _stamp(path), name, split, num_classes, k)


def show_strip(images: np.ndarray, caption: str, cols: int | None = None, factor: int = 2,
               slots: int | None = None) -> None:
    """A row (or grid) of small images as one sharp picture; `slots` pads it with blank (black) cells so
    strips with fewer images come out at the same scale as full ones."""
    if len(images) == 0:
        st.caption(f"{caption}: no images")
        return
    if slots and len(images) < slots:
        images = np.concatenate([images, np.zeros((slots - len(images), *images.shape[1:]), images.dtype)])
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
