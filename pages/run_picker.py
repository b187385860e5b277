"""Choosing runs: the run a page uses, run pickers and the names they give runs, making a run the active model."""
from __future__ import annotations

import streamlit as st

from kmnist import runs
from pages import cached, common


def active_run_or_stop() -> runs.Run:
    """The run whose model the page uses: the active one, or, when its model cannot be loaded, the shipped
    default under a one-line warning naming the run and what is wrong."""
    try:
        active = runs.load_active(load=cached.predictor)  # checks the model it will answer with (ONNX: no Keras)
    except runs.ModelError as e:
        common.stop(f"{e}. Activate a working run on the **Training** page "
                    "(or with `python -m kmnist activate RUN`).")
    if active is None:
        common.stop("There is no active model yet. Train one on the **Training** page (or run "
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
        common.stop("There are no training runs yet. Train a model on the **Training** page.")
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


def activation(run: runs.Run, allowed: bool, key: str, label: str = "Make this the active model") -> bool:
    """A button that makes `run` the model every page uses, asking first when it scores lower than the active one;
    True while it asks."""
    active = runs.active_run()
    if active is not None and active.id == run.id:
        st.success(f"{run.id} is the active model: every page uses it.")
        return False
    if not run.has_model:
        st.caption(f"{run.id} saved no model ({run.state}), so it cannot be made the active model.")
        return False
    asking = f"{key}-confirm"
    if allowed and st.session_state.get(asking) == run.id:
        st.warning(f"{lower_score(run, active)}: make {run.id} the active model anyway?")
        yes, no = st.columns(2)
        if yes.button("Make it active anyway", key=f"{key}-yes", type="primary"):
            _activate(run, key)
        if no.button(f"Keep {active.id}", key=f"{key}-no"):
            del st.session_state[asking]
            st.rerun()
        return True
    if st.button(label, key=key, type="primary", disabled=not allowed,
                 help=None if allowed else "Read-only here: activating models is turned off"):
        if active is not None and lower_score(run, active):
            st.session_state[asking] = run.id
            st.rerun()
        _activate(run, key)
    return False


def _activate(run: runs.Run, key: str) -> None:
    st.session_state.pop(f"{key}-confirm", None)
    try:
        runs.set_active(run.id)
    except (ValueError, LookupError) as e:  # the run is gone, or its model does not load or fit its classes
        st.error(f"Cannot make {run.id} the active model: {e}")
        return
    st.rerun()  # the whole app, so the sidebar and every page switch to it now
