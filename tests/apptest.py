"""Running the app under Streamlit's AppTest: the entry script, the time a run may take, opening a page, reading it."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

from kmnist import files

APP = str(files.ROOT / "app.py")
TIMEOUT = 120  # seconds per script run: TensorFlow loads on the first one, on a busy 2-core machine


def open_page(page: str | None = None, **state) -> AppTest:
    """Run the app (the Draw page), then switch to `page` ("evaluation": pages/evaluation.py) if given; session
    state is set before the first run. Fails on any exception the page raised."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    if page:
        at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def captions(at: AppTest) -> str:
    """The captions under every image."""
    return "\n".join(c for i in at.image for c in i.captions)


def metric(at: AppTest, label: str):
    found = [m for m in at.metric if m.label == label]
    assert found, f"no {label!r} metric; metrics: {[m.label for m in at.metric]}"
    return found[0]
