"""The Kuzushiji lab: page frame, navigation and the sidebar every page shares.

Run with `streamlit run app.py`. Data comes from $KMNIST_DATA_DIR (else the per-user cache),
runs from $KMNIST_RUNS_DIR (else runs/ here).
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the server log

import streamlit as st  # noqa: E402 - after the environment TensorFlow reads at import

from kmnist import datasets, runs  # noqa: E402
from pages import common  # noqa: E402

STATE_ICON = {"complete": ":material/check_circle:", "partial": ":material/incomplete_circle:",
              "absent": ":material/radio_button_unchecked:"}


def sidebar() -> None:
    """The active model and what data is here, on every page."""
    with st.sidebar:
        st.subheader("Active model")
        run = runs.active_run()
        if run is None:
            st.info("No model yet: train one on the Training page.")
        else:
            acc = run.metrics.get("accuracy")
            st.markdown(f"**{run.id}**" + (" (shipped)" if run.shipped else ""))
            st.caption(f"{run.config.arch} network trained on {run.config.dataset}"
                       + (f" · test accuracy {acc:.1%}" if acc is not None else ""))
            st.markdown(f"Knows {len(run.classes)} characters: " + " ".join(c.char for c in run.classes))
        st.subheader("Data")
        st.caption(f"Data dir: `{datasets.data_dir()}`")
        for s in datasets.list_datasets():
            state = datasets.availability(s)
            st.markdown(f"{STATE_ICON[state]} **{s.name}** {state}")


# A local icon: a :material/...: page icon makes the browser fetch the favicon from Google's font host.
st.set_page_config(page_title="Kuzushiji lab", page_icon=os.path.join(os.path.dirname(__file__), "assets", "icon.png"),
                   layout="wide")
page = st.navigation([
    st.Page("pages/draw.py", title="Draw", icon=":material/draw:", default=True),
    st.Page("pages/dataset.py", title="Dataset", icon=":material/dataset:"),
    st.Page("pages/embedding.py", title="Embedding", icon=":material/scatter_plot:"),
    st.Page("pages/evaluation.py", title="Evaluation", icon=":material/analytics:"),
    st.Page("pages/weak_classes.py", title="Weak classes", icon=":material/troubleshoot:"),
    st.Page("pages/training.py", title="Training", icon=":material/model_training:"),
])
sidebar()
active = runs.active_run()
if active is not None and active.has_model:
    common.predictor(active)  # load and trace the model once per server, before the first stroke needs it
page.run()
