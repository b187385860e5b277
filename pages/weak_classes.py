"""Weak classes: the classes a run recognises worst, what they are mistaken for, and how every run does
on them."""
from dataclasses import asdict

import pandas as pd
import streamlit as st

import app
from kmnist import evaluate, figures, runs
from kmnist.evaluate import WEAK_F1, misclassified, top_confusions, weak_classes
from pages import cached, common, run_picker

app.enter()  # inside app.py's frame, even on a first deep link

EXAMPLES = 8  # images per weak class and per confusion
MAX_DETAILED = 12  # weak classes shown in detail; the table lists them all
SHOWN = 5  # weakest classes shown on opening

st.title("Weak classes")
run = run_picker.choose_run("weak_run")
rep = run.report
if rep is None:
    common.stop(f"Run {run.id} has no test scores yet ({run.state}). Scores appear when its training completes.")
scored = weak_classes(rep, float("inf"))  # every class with test images, weakest first
# Number inputs rather than a slider: a slider reruns the page for every step of a drag.
k_col, f1_col = st.columns(2)
k = k_col.number_input("Weakest classes shown", 1, max(len(scored), 1), min(SHOWN, max(len(scored), 1)),
                       key="weak_k", help="The classes with the lowest test F1")
threshold = f1_col.number_input("Only those with F1 under", 0.0, 1.0, 1.0, 0.05, key="weak_threshold",
                                format="%.2f", help=f"1.00 shows the weakest whatever their F1; the seed study "
                                f"called classes under {WEAK_F1:.2f} weak")
weak = weak_classes(rep, threshold)[:int(k)]
st.caption(f"The {len(weak)} classes of {run.id} with the lowest F1 on the {run.config.dataset} test set"
           + (f", among those under {threshold:.2f}" if threshold < 1 else "") + ", weakest first. (The seed "
           "study of K49 found な ま る ゐ ゝ under 0.8.)")
if not weak:
    common.stop(f"No class of {run.id} has F1 under {threshold:.2f}. Raise the threshold to see the weakest.")

kanji = {c.index: c.kanji for c in run.classes}
st.dataframe(pd.DataFrame([asdict(c) | {"字母": kanji[c.index]} for c in weak]).rename(columns={"index": "class"}),
             hide_index=True, column_order=["class", "char", "romaji", "字母", "precision", "recall", "f1", "support"],
             column_config={k: st.column_config.NumberColumn(format="%.3f") for k in ("precision", "recall", "f1")})
common.new_character_scores(run)

st.subheader("Every run on these classes")
chars = [c.char for c in weak]
table = evaluate.f1_table(((r.id, r.report) for r in runs.list_runs() if r.report is not None), chars)
st.caption("Test F1 of each run that knows these characters; blank where a run does not know one.")
st.plotly_chart(figures.f1_across_runs(table, threshold if threshold < 1 else None), key="weak_runs")
st.dataframe(table.style.format("{:.3f}", na_rep="—"))

st.subheader("What they are mistaken for")
name = run.config.dataset
train_images = cached.array(name, "train", "imgs")
picks = cached.samples(name, "train", len(run.classes), EXAMPLES) if train_images is not None else None
test = common.test_split(run)
if train_images is None:
    st.info("Example training images need the training set. " + common.missing_note(name, "train"))
if isinstance(test, str):
    st.info("Images of the mistakes need the test set. " + test)
cm = rep.confusion_matrix
label = {c.index: c.label() for c in run.classes}
for c in weak[:MAX_DETAILED]:
    st.markdown(f"#### {label[c.index]} · F1 {c.f1:.3f} (precision {c.precision:.3f}, recall {c.recall:.3f})")
    confusions = top_confusions(cm, true=c.index, k=3)
    # One row per weak class: its training images, then the images of its three commonest mistakes.
    cols = st.columns(4)
    if picks is not None:
        with cols[0]:
            common.show_strip(train_images[picks[c.index]], f"training images of {label[c.index]}", cols=4,
                              slots=EXAMPLES)
    if not confusions:
        cols[1].caption("No test image of this class was mistaken for another; its F1 is low from false alarms.")
    for col, conf in zip(cols[1:], confusions):
        text = f"{conf.count} ({conf.share:.1%}) read as {label[conf.predicted]}"
        with col:
            if isinstance(test, str):
                st.caption(text)
                continue
            images, y_true, y_pred = test
            idx = misclassified(y_true, y_pred, true=conf.true, predicted=conf.predicted)[:EXAMPLES]
            common.show_strip(images[idx], text, cols=4, slots=EXAMPLES)
if len(weak) > MAX_DETAILED:
    st.caption(f"{len(weak) - MAX_DETAILED} more weak classes are listed in the table above.")
