"""The Kuzushiji lab: page frame, navigation and the sidebar every page shares.

Run with `streamlit run app.py`. Data comes from $KMNIST_DATA_DIR (else the per-user cache),
runs from $KMNIST_RUNS_DIR (else runs/ here). Streamlit runs this file as the script of every page view;
`streamlit run` also imports it once as a module and, finding `app` (an `st.App`), serves that: Streamlit's
own server plus the live canvas's routes (browser models straight from the run directories, the runtime).
"""
import os

# TensorFlow's C++ log: 3 keeps its start-up chatter and, on machines without a GPU, its failed GPU probe
# ("E0000 … failed call to cuInit") out of the server log; Python errors still reach it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import streamlit as st  # noqa: E402 - after the environment TensorFlow reads at import

import kmnist_live  # noqa: E402
from kmnist import datasets, files, runs, settings  # noqa: E402
from pages import cached  # noqa: E402

ICON = files.ROOT / "assets" / "icon.png"  # the tab icon, served by the app itself (works offline)

FRAMED = "framed_by_app"  # session key main() sets right before it runs a page

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


def frame():
    """Page config, menu and sidebar around every page; returns the page the URL asks for."""
    if settings.public_mode():  # no exception detail (paths, code) reaches a visitor's browser; the server log has it
        st.set_option("client.showErrorDetails", "none")
    st.set_page_config(page_title="Kuzushiji lab", page_icon=str(ICON), layout="wide")
    page = st.navigation([
        st.Page("pages/draw.py", title="Draw", icon=":material/draw:", default=True),
        st.Page("pages/dataset.py", title="Dataset", icon=":material/dataset:"),
        st.Page("pages/characters.py", title="Characters", icon=":material/translate:"),
        st.Page("pages/embedding.py", title="Embedding", icon=":material/scatter_plot:"),
        st.Page("pages/evaluation.py", title="Evaluation", icon=":material/analytics:"),
        st.Page("pages/weak_classes.py", title="Weak classes", icon=":material/troubleshoot:"),
        st.Page("pages/training.py", title="Training", icon=":material/model_training:"),
    ])
    sidebar()
    return page


def main() -> None:
    """The page the URL asks for, in the frame."""
    page = frame()
    cached.warm()  # the model loads with the first page, not with the first stroke
    st.session_state[FRAMED] = True
    page.run()


def enter() -> None:
    """A page's first line: make sure the frame (page config, menu, sidebar) is around it.

    A folder named pages/ beside the entry script is Streamlit's legacy multipage layout, which Streamlit
    follows until st.navigation is first called in the server process (under AppTest: in each run). So a
    deep link that is the first request after a start (say /evaluation) runs its page alone, without app.py.
    Then the page runs main() (whose st.navigation call ends the legacy layout), which runs the page framed,
    and this bare run stops there.
    """
    if not st.session_state.pop(FRAMED, False):
        main()
        st.stop()


if __name__ == "__main__":  # run by Streamlit, for every URL; a page run without it calls main() through enter()
    main()
else:  # imported by `streamlit run app.py` (it looks for an ASGI app here): the server, with the live routes
    app = st.App(__file__, routes=kmnist_live.routes())
