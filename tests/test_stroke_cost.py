"""What a stroke on the Draw page costs the server, beyond the page itself (issue 12 §5, issue 13).

Streamlit resets Keras after every script run whenever Keras is imported in the process, and that reset
runs a full garbage collection. The Draw page keeps both away: its model runs through the ONNX export
(no Keras import on the way), and loaded models and arrays are frozen out of collections. The timings
are measured by benchmarks/load.py; these tests hold the behaviour.
"""
from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import weakref

import pytest
import streamlit as st

from kmnist import runs
from pages import cached
from tests.apptest import APP, TIMEOUT, metric, open_page
from tests.conftest import SEED_RUN
from tests.test_live import run_without_export
from tests.test_app_draw import cross

# Runs the Draw page once in a fresh interpreter (this one may have imported Keras already) with a
# drawing injected as the canvas would send it, explanations off (Live mode's default), and says what the
# process imported.
PROBE = f"""
import json, sys
import numpy as np
from streamlit.testing.v1 import AppTest
drawing = np.full((200, 200, 4), 255, np.uint8)
drawing[40:160, 95:110, :3] = 0
at = AppTest.from_file({APP!r}, default_timeout={TIMEOUT})
at.session_state["draw_injected_image"] = drawing
at.session_state["draw_explain_server"] = False  # explaining (saliency, nearest forms) is Keras' job by design
at.run()
assert not at.exception, [e.value for e in at.exception]
print(json.dumps({{"prediction": [m.value for m in at.metric if m.label == "Prediction"],
                   "keras": "keras" in sys.modules}}))
"""


def draw_in_fresh_process(runs_dir) -> dict:
    env = {**os.environ, "KMNIST_RUNS_DIR": str(runs_dir), "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("exported", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_the_draw_page_imports_keras_only_for_a_run_without_export(runs_dir, no_data, exported):
    if exported:
        runs.set_active(SEED_RUN)
    else:  # the control: the same probe does see Keras when the page has to use it
        run_without_export(runs_dir)
    seen = draw_in_fresh_process(runs_dir)
    assert seen["prediction"], "the Draw page showed no prediction for the injected drawing"
    assert seen["keras"] is (not exported), (
        "a run with model.onnx must be read without importing Keras (else Streamlit resets Keras after every "
        "stroke)" if exported else "without model.onnx the Keras model is used, so Keras is imported")


@pytest.fixture
def gc_paused():
    """No automatic collections and nothing frozen during the test; both restored after."""
    gc.unfreeze()
    gc.disable()
    st.cache_resource.clear()  # so the page loads its model now, in this test
    yield
    gc.enable()
    gc.unfreeze()


def test_a_loaded_model_is_frozen_out_of_collections_after_one_collection(seed_run, no_data, gc_paused):
    class Cycle:
        pass

    junk = Cycle()
    junk.me = junk  # garbage only a collection can free
    gone = weakref.ref(junk)
    del junk
    assert gc.get_freeze_count() == 0
    at = open_page(draw_injected_image=cross())
    assert metric(at, "Prediction").value in [c.char for c in seed_run.classes]
    assert gone() is None, "the cyclic garbage alive before loading was frozen instead of collected"
    assert gc.get_freeze_count() > 0, "nothing was frozen after the model loaded"
    predictor = cached.predictor(seed_run)  # the cached one the page used
    assert not any(o is predictor for o in gc.get_objects()), "the predictor is still walked by every collection"
