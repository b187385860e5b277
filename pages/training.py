"""Training page: start a training in the background, follow it live, cancel it, activate the result.

The training is its own process (kmnist.jobs), never part of this script's run: the page only reads the
run's status.json, so a reload or an app restart finds the job again.
"""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

import app
from kmnist import chatter, datasets, drawings, figures, finetune, jobs, runs, settings
from kmnist.config import TrainConfig, recipe
from kmnist.models import ARCHITECTURES
from pages import run_picker

app.enter()  # inside app.py's frame, even on a first deep link

POLL_S = 1.0  # seconds between status reads while a job runs
BATCH_SIZES = [32, 64, 128, 256, 512]
FINISHED_WITH_MODEL = ("completed", "cancelled")


def start_form(allowed: bool, busy: jobs.Job | None) -> None:
    trainable = [s.name for s in datasets.list_datasets() if s.trainable]
    if not trainable and allowed:
        st.info(f"No dataset here has training and test images, so there is nothing to train on. Download one on "
                f"the **Dataset** page, or start the app with `KMNIST_DATA_DIR` pointing at a folder that holds a "
                f"dataset folder (data dir now: `{datasets.data_dir()}`).")
    defaults = TrainConfig()
    off = not allowed  # read-only: the whole form is shown, greyed out
    with st.form("train-form"):
        left, mid, right = st.columns(3)
        dataset = left.selectbox("Dataset", trainable or ["(none)"], disabled=off or not trainable,
                                 index=trainable.index(defaults.dataset) if defaults.dataset in trainable else 0,
                                 help="Datasets with training and test images here")
        arch = left.selectbox("Architecture", list(ARCHITECTURES), disabled=off)
        epochs = mid.number_input("Epochs", 1, 200, defaults.epochs, disabled=off)
        batch = mid.selectbox("Batch size", BATCH_SIZES, BATCH_SIZES.index(defaults.batch_size), disabled=off)
        seed = right.number_input("Seed", 0, 2**31 - 1, defaults.seed, disabled=off,
                                  help="Seeds the split, weights and order")
        why = ("training is turned off here" if not allowed else f"run {busy.run_id} is still {busy.state}"
               if busy else "" if trainable else "no dataset to train on")
        submitted = right.form_submit_button("Start training", type="primary", disabled=bool(why),
                                             help=f"Disabled: {why}" if why else "Runs in the background")
    if submitted:
        try:
            run_id = jobs.start(recipe(arch).replace(dataset=dataset, epochs=int(epochs), batch_size=int(batch),
                                                     seed=int(seed)))
        except jobs.JobError as e:
            st.error(str(e))
            return
        st.toast(f"Started run {run_id}")
        st.rerun()


def finetune_form(allowed: bool, busy: jobs.Job | None) -> None:
    """Fine-tune the active model with the drawings saved from the Draw page (kmnist.finetune)."""
    mine = drawings.drawings()
    active = runs.active_run()
    if not mine or active is None or not active.has_model:
        return
    st.subheader("Teach the active model your drawings")
    st.caption(f"{len(mine)} drawing{'s' if len(mine) != 1 else ''} saved from the Draw page "
               f"({drawings.NAME}). A fine-tune starts from {active.id}'s weights and trains a few epochs on its "
               "own training data plus your drawings (repeated, so they count), as a new run; it reports the test "
               "accuracy before and after, and the accuracy on the drawings held out (every fifth one).")
    new = finetune.new_characters(active.classes, mine)
    known = {c.char for c in active.classes}
    waiting = {ch: n for ch, n in drawings.counts([d for d in mine if d.split == "train"]).items()
               if ch not in known and ch not in new}
    if new:
        st.markdown(f"**New characters it will learn:** {' '.join(new)} — the new run's class table grows by "
                    f"{len(new)}, after {active.id}'s {len(active.classes)} characters.")
    if waiting:
        st.caption(f"Too few drawings to learn from yet (a new character needs {finetune.MIN_DRAWINGS}): "
                   + ", ".join(f"{ch} {n}" for ch, n in waiting.items()) + ".")
    epochs = st.number_input("Fine-tune epochs", 1, 20, 3, key="finetune_epochs", disabled=not allowed)
    why = "training is turned off here" if not allowed else f"run {busy.run_id} is still {busy.state}" if busy else ""
    if st.button("Fine-tune the active model", disabled=bool(why), help=f"Disabled: {why}" if why else None):
        try:
            run_id = jobs.start_finetune(active.id, drawings.NAME, int(epochs))
        except jobs.JobError as e:
            st.error(str(e))
            return
        st.toast(f"Started run {run_id}")
        st.rerun()


def curves(job: jobs.Job) -> go.Figure | None:
    """Per-epoch loss and accuracy, plus where the running epoch stands."""
    history = job.status.get("history") or (job.run.history if job.run else {})
    point = figures.live_point(job)
    if not history and point is None:
        return None
    fig = figures.history(history)
    if point is not None:
        x, metrics = point
        for col, metric in enumerate(("loss", "accuracy"), start=1):
            if metric in metrics:
                fig.add_trace(go.Scatter(x=[x], y=[metrics[metric]], mode="markers", name="this epoch so far",
                                         marker=dict(color="#4c78a8", size=10, symbol="circle-open"),
                                         showlegend=col == 1, hovertemplate="%{y:.4f} so far<extra></extra>"),
                              row=1, col=col)
    return fig


def finished(job: jobs.Job, allowed: bool) -> None:
    run = job.run
    if run is None:
        return
    m = run.metrics
    tuned = finetune.read_report(run)
    if tuned is not None:
        st.info(f"Fine-tuned from {tuned.base_run} with {tuned.train_drawings} of your drawings: {tuned.summary()}.")
    if "accuracy" in m:
        cols = st.columns(5)
        cols[0].metric("Test accuracy", f"{m['accuracy']:.2%}")
        val = m.get("val_accuracy")
        cols[1].metric("Validation accuracy", f"{val:.2%}" if isinstance(val, (int, float)) else "—")
        cols[2].metric("Macro F1", f"{m['macro_f1']:.3f}")
        done = m.get("epochs_done")  # a cancel mid-epoch counts the batches it did: 30 of 43 is 0.698
        cols[3].metric("Epochs trained", f"{done:g} of {run.config.epochs}" if isinstance(done, (int, float)) else "?",
                       help=f"Stopped at {run_picker.progress(run)}" if run.state == "cancelled" else None)
        cols[4].metric("Training time", figures.format_seconds(m.get("train_seconds", 0)))
    run_picker.activation(run, allowed, key="activate")


def runs_section(allowed: bool) -> None:
    """Every run with its state and scores; any run with a model can be made the active one, or the shipped
    default brought back."""
    st.subheader("Runs")
    found = runs.list_runs()
    active = runs.active_run_id()
    st.dataframe(pd.DataFrame([{
        "run": r.id, "state": r.state, "trained": run_picker.progress(r), **{
            f"{split} {name}": value for name, got in [run_picker.scores(r)] for split, value in got.items()},
        "active": r.id == active, "shipped": r.shipped} for r in found]), hide_index=True,
        column_config={c: st.column_config.NumberColumn(format="percent") for c in (
            "validation accuracy", "test accuracy", "validation balanced accuracy", "test balanced accuracy")})
    with_model = {r.id: r for r in found if r.has_model}
    if not with_model:
        return
    ids = list(with_model)
    pick = st.selectbox("Run to use", ids, index=ids.index(active) if active in ids else 0, key="runs_pick",
                        format_func=lambda i: run_picker.run_label(with_model[i], active))
    asking = run_picker.activation(with_model[pick], allowed, key="runs_activate")
    default = runs.shipped_default()
    if default is not None and default.id != pick and not asking:  # under a question, only its two answers
        run_picker.activation(default, allowed, key="runs_default",
                          label=f"Back to the shipped default ({default.id})")


def job_panel(run_id: str, was_active: bool, allowed: bool) -> None:
    job = jobs.get(run_id)
    if job.active != was_active:
        st.rerun()  # started or finished since the page was drawn: redraw the form and the polling
    st.subheader(f"Run {job.run_id}: {job.state}")
    if job.active:
        st.progress(figures.job_fraction(job), text=figures.job_line(job))
        if (runs.runs_dir() / run_id / runs.CANCEL_FILE).exists():
            st.caption("Cancel requested: it stops after the current batch and saves what it has.")
        elif st.button("Cancel training", disabled=not allowed, key="cancel"):
            jobs.cancel(run_id)
            st.rerun(scope="fragment")
    elif job.message:
        st.error(job.message)
    fig = curves(job)
    if fig is not None:
        st.plotly_chart(fig, key=f"curves-{run_id}")
    elif job.active:
        st.caption("The curves appear once the first batches are done.")
    if job.state in FINISHED_WITH_MODEL:
        finished(job, allowed)
    if job.log:
        with st.expander("Log"):
            st.code(chatter.quiet_log(jobs.read_log(job)) or "(empty)", language=None)


st.title("Training")
allowed = settings.training_allowed()
if not allowed:
    st.info(("This is a public site" if settings.public_mode() else "Training is turned off here") + ": this page is "
            "read-only. It shows the runs as they are; starting, cancelling and activating are disabled.")
st.caption("A training runs as its own background process: you can leave this page, reload it or restart the "
           "app, and it keeps going. One training runs at a time.")
latest = jobs.latest()
busy = latest if latest and latest.active else None
start_form(allowed, busy)
finetune_form(allowed, busy)
if latest is not None:
    st.fragment(run_every=POLL_S if busy else None)(job_panel)(latest.run_id, busy is not None, allowed)
runs_section(allowed)
