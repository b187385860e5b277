"""Evaluation: a run's test scores, classification report, clickable confusion matrix with the images
behind each cell, training curves and model summary."""
from dataclasses import asdict

import pandas as pd
import streamlit as st

import app
from kmnist import figures, models, settings
from kmnist.evaluate import cell_indices, top_confusions
from pages import cached, common, run_picker

app.enter()  # inside app.py's frame, even on a first deep link

SHOWN = 40  # images shown for one confusion-matrix cell

st.title("Evaluation")
run = run_picker.choose_run("eval_run")
run_picker.activation(run, settings.training_allowed(), key="eval_activate")
rep = run.report
if rep is None:
    common.stop(f"Run {run.id} has no test scores yet ({run.state}). Scores appear when its training completes.")
classes = run.classes
st.caption(f"Scores of {run.id} ({run.state}, {run_picker.progress(run) or 'epochs unknown'}) on the "
           f"{run.config.dataset} test set ({sum(c.support for c in rep.per_class):,} images), computed when the "
           "run finished. Validation scores come from images held out of its training split; choose models by "
           "them, the test set only reports.")

m = run.metrics
val = {k: m.get(f"val_{k}") for k in ("accuracy", "balanced_accuracy", "loss")}
a, b, c, d = st.columns(4)
a.metric("Accuracy", f"{rep.accuracy:.2%}",
         help="Share of test images read right" + (f"; validation {val['accuracy']:.2%}" if val["accuracy"] else ""))
b.metric("Balanced accuracy", f"{rep.balanced_accuracy:.2%}", help="Mean recall over classes: the K49 score")
c.metric("Macro F1", f"{rep.macro_f1:.3f}", help="Unweighted mean F1 over the classes in the test set")
d.metric("Weighted F1", f"{rep.weighted_f1:.3f}", help="F1 averaged with each class weighted by its test images")
if any(isinstance(v, (int, float)) for v in val.values()):
    a, b, c, _ = st.columns(4)
    for col, (label, key, fmt) in zip((a, b, c), (("Validation accuracy", "accuracy", "{:.2%}"),
                                                  ("Validation balanced accuracy", "balanced_accuracy", "{:.2%}"),
                                                  ("Validation loss", "loss", "{:.3f}"))):
        if isinstance(val[key], (int, float)):
            col.metric(label, fmt.format(val[key]), help=f"On {m.get('val_images', 'the'):,} validation images"
                       if isinstance(m.get("val_images"), int) else None)
else:
    st.caption(f"{run.id} recorded no validation scores (runs trained before they were kept).")

st.subheader("Classification report")
st.caption("One row per class; click a column header to sort.")
table = pd.DataFrame([asdict(s) for s in rep.per_class]).rename(columns={"index": "class"})
st.dataframe(table, hide_index=True, column_config={
    k: st.column_config.NumberColumn(format="%.3f") for k in ("precision", "recall", "f1")})
common.new_character_scores(run)

st.subheader("Confusion matrix")
st.caption("Rows are true classes, columns predicted ones; green cells are correct, red cells mistakes. "
           "Hover a cell for its count, click it to see its test images below.")
normalise = st.toggle("Normalise rows (share of each true class)", key="eval_normalise")
cm = rep.confusion_matrix
chart = f"eval_cm_{run.id}"
# A click moves the pickers to that cell (read before the chart is drawn, so the chart outlines it); the
# pickers stay usable on their own (and with keyboards). Keys carry the run id: another run may know other classes.
clicked = figures.cell_from_selection(st.session_state[chart].selection if chart in st.session_state else None)
keys = {k: f"eval_{k}_{run.id}" for k in ("clicked", "true", "pred")}
if clicked and st.session_state.get(keys["clicked"]) != clicked:
    st.session_state[keys["clicked"]] = clicked
    st.session_state[keys["true"]], st.session_state[keys["pred"]] = clicked
worst = top_confusions(cm, k=1)
default = (worst[0].true, worst[0].predicted) if worst else (0, 0)
st.session_state.setdefault(keys["true"], default[0])
st.session_state.setdefault(keys["pred"], default[1])
st.plotly_chart(figures.confusion(cm, classes, normalise, chosen=(st.session_state[keys["true"]],
                                                                  st.session_state[keys["pred"]])),
                key=chart, on_select="rerun", selection_mode="points", width="content")
label = {c.index: f"{c.char} {c.romaji}" for c in classes}
t_col, p_col = st.columns(2)
true = t_col.selectbox("True class", list(label), format_func=label.get, key=keys["true"])
pred = p_col.selectbox("Predicted class", list(label), format_func=label.get, key=keys["pred"])
count = int(cm[true, pred])
st.markdown(f"**{count:,}** test image{'' if count == 1 else 's'} of {label[true]} "
            f"{'was' if count == 1 else 'were'} predicted as {label[pred]}.")
test = common.test_split(run)
if isinstance(test, str):
    st.info("The images behind the matrix need the test set. " + test)
elif count:
    images, y_true, y_pred = test
    idx = cell_indices(y_true, y_pred, true, pred)
    common.show_strip(images[idx[:SHOWN]], f"test images {', '.join(map(str, idx[:6]))}"
                      + (" …" if len(idx) > 6 else "") + f" (showing {min(len(idx), SHOWN)} of {len(idx)})",
                      cols=10, factor=3)

st.subheader("Training history")
hist = run.history
if hist:
    st.plotly_chart(figures.history(hist), key="eval_history")
    st.caption("Per epoch; validation images are held out of the training split.")
else:
    st.info("This run saved no training history.")

st.subheader("Model")
if not run.has_model:
    st.info(f"Run {run.id} has no saved model ({run.state}).")
else:
    net = cached.model(run)
    st.caption(f"{run.config.arch}: {models.parameter_count(net):,} parameters; "
               f"optimizer {run.config.optimizer}, {run.config.epochs} epochs, batch {run.config.batch_size}.")
    st.dataframe(pd.DataFrame(models.layer_table(net)), hide_index=True)
