"""Embedding page: UMAP maps of Kuzushiji beside MNIST (or of the active model's features), coloured by
class; selecting points shows their images, and the last drawing is placed among its neighbours."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import streamlit as st

import app
from kmnist import KmnistError, datasets, embed, figures, runs, settings
from pages import cached, common, run_picker

app.enter()  # inside app.py's frame, even on a first deep link

SHOWN = 120  # selected images shown at most
POLL_S = 0.5  # seconds between progress updates while a map is computed
DONE = "embed-computed-"  # session key prefix: what computing a map took, shown once above the new map


def sample(emb: embed.Embedding, kind: str) -> np.ndarray | None:
    """The mapped points' images ("imgs") or labels ("labels"), None when the data is not here."""
    parts = [cached.array(emb.config.dataset, s, kind) for s in emb.splits]
    return None if any(p is None for p in parts) else embed.take(emb, parts)


@st.cache_resource(max_entries=4, show_spinner="Preparing the mapped images for placing drawings…")
def _points(source: str, stamp: float, run_id: str, model_stamp: float) -> np.ndarray:
    """The mapped images as vectors (pixels, or features of run_id's model), float64 as place() uses them."""
    emb = embed.read(Path(source))
    model = cached.model(runs.get_run(run_id)) if run_id else None
    return embed.vectors(sample(emb, "imgs"), emb.config.space, model).astype(np.float64)


def drawing_mark(emb: embed.Embedding, run: runs.Run | None) -> dict[str, np.ndarray]:
    """The last drawing's place on the map, found among its nearest mapped neighbours."""
    drawing = st.session_state.get(common.LAST_DRAWING)
    if drawing is None:
        return {}
    if emb.config.space == "pixels":
        points = _points(str(emb.source), emb.source.stat().st_mtime, "", 0.0)
        new = embed.vectors(drawing[None])
    else:
        model_file = run.path / runs.MODEL_FILE
        points = _points(str(emb.source), emb.source.stat().st_mtime, run.id, model_file.stat().st_mtime)
        new = embed.vectors(drawing[None], "features", cached.model(run))
    return {"your last drawing": embed.place(points, emb.coords, new)[0]}


def compute_button(config: embed.EmbedConfig, run: runs.Run | None) -> None:
    """No stored map for these parameters: offer to compute it here (the data is needed)."""
    status = datasets.status(config.dataset)
    if not status.has("train-imgs"):
        st.info(f"No map of {config.dataset} is stored, and its images are not here to compute one. "
                + common.missing_note(config.dataset, "train"))
        return
    if settings.public_mode():
        st.info(f"No map of {config.dataset} ({config.space}) is stored on this public site, and computing maps "
                "is turned off here.")
        return
    estimate, basis = embed.estimate_seconds(config)
    st.info(f"No map of {config.dataset} ({config.space}) is stored yet. Computing one takes about "
            f"{figures.format_seconds(estimate)} ({basis}); it is then kept in the cache for every later visit "
            "(or run `python -m kmnist embed`).")
    if st.button("Compute this map", key=f"compute-{config.key()}", type="primary"):
        emb = compute(config, run, estimate)
        if emb is not None:
            took, guess = figures.format_seconds(emb.seconds), figures.format_seconds(estimate)
            st.session_state[DONE + config.key()] = f"Map computed in {took} (estimated {guess})."
            st.rerun()


def compute(config: embed.EmbedConfig, run: runs.Run | None, estimate: float) -> embed.Embedding | None:
    """Compute and store the map apart from the page, which shows the stage, the time spent and the time left.

    UMAP reports only its last stage, so between reports the bar follows the clock against the estimate.
    """
    bar = st.progress(0.0, text="starting")
    model = cached.model(run) if run else None  # before the worker starts: Streamlit's caches need this thread
    state: dict = {"stage": "starting", "done": 0.0}
    estimate = max(estimate, 1.0)

    def work():
        try:
            state["emb"] = embed.get(config, progress=lambda stage, done: state.update(stage=stage, done=done),
                                     model=model)
        except Exception as e:  # handed to the page, which names it
            state["error"] = e

    worker = threading.Thread(target=work, daemon=True)
    started = time.time()
    worker.start()
    while True:
        elapsed = time.time() - started
        bar.progress(min(max(state["done"], elapsed / estimate), 0.99),
                     text=figures.progress_text(state["stage"], elapsed, estimate))
        if not worker.is_alive():
            break
        worker.join(POLL_S)
    if "error" in state:
        if not isinstance(state["error"], KmnistError):
            raise state["error"]
        st.error(f"Computing the map stopped: {state['error']}")
        return None
    return state["emb"]


def show_map(config: embed.EmbedConfig, run: runs.Run | None = None, place_drawing: bool = False) -> None:
    emb = embed.find(config)
    if emb is None:
        compute_button(config, run)
        return
    if done := st.session_state.pop(DONE + config.key(), None):
        st.success(done)
    labels, imgs = sample(emb, "labels"), sample(emb, "imgs")
    try:
        classes = datasets.load_classes(config.dataset)
    except datasets.DataMissingError:
        classes = run.classes if run else None
    if classes is None:
        labels = None  # without a class table the labels cannot be named
    marks = drawing_mark(emb, run) if place_drawing and imgs is not None else {}
    event = st.plotly_chart(figures.map_figure(emb, labels, classes, marks), on_select="rerun",
                            selection_mode=("points", "box", "lasso"), key=f"map-{config.key()}")
    st.caption(embed.describe(emb))
    if labels is None or imgs is None:
        st.info("The map's positions ship with the app, but colours by class and the images come from the "
                "data. " + common.missing_note(config.dataset, emb.splits[-1],
                                               "labels" if labels is None else "imgs"))
        return
    picked = figures.selected_points(event.selection if event else None)
    if not len(picked):
        st.caption("Drag a lasso or a box over points to see their images.")
        return
    counts = np.bincount(labels[picked], minlength=len(classes))
    summary = ", ".join(f"{classes[c].char} {counts[c]}" for c in np.argsort(-counts) if counts[c])
    common.show_strip(imgs[picked[:SHOWN]], f"{len(picked):,} selected ({summary})"
                      + (f"; the first {SHOWN} shown" if len(picked) > SHOWN else ""), cols=12)


st.title("Embedding")
st.caption("UMAP lays the images out in 2-D so that similar ones sit close together. Hover a point to see "
           "its character; lasso some to see the images.")
mode = st.radio("Map of", ["pixels", "features"], horizontal=True, key="embed-space",
                format_func=lambda m: {"pixels": "Raw pixels: Kuzushiji beside MNIST",
                                       "features": "Features of the active model"}[m])
if st.session_state.get(common.LAST_DRAWING) is None:
    st.caption("Draw a character on the **Draw** page and it is placed on the Kuzushiji map as a star.")

if mode == "pixels":
    left, right = st.columns(2)
    with left:
        kuzushiji = embed.kuzushiji_dataset()
        st.subheader(f"Kuzushiji ({kuzushiji})")
        show_map(embed.EmbedConfig(dataset=kuzushiji), place_drawing=True)
    with right:
        st.subheader("MNIST digits")
        show_map(embed.EmbedConfig(dataset="mnist"))
else:
    active = run_picker.active_run_or_stop()
    st.subheader(f"Penultimate-layer features of {active.id}, on {active.config.dataset}")
    show_map(embed.EmbedConfig(dataset=active.config.dataset, space="features", run_id=active.id), active,
             place_drawing=True)
