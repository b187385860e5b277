"""The live Draw path: model publishing, the default mode and the server fallback, and the component in Chromium."""
from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

import kmnist_live
from kmnist import export, runs
from tests.apptest import APP, TIMEOUT, open_page
from tests.conftest import SEED_RUN
from tests.test_browser import ARTIFACTS, app_url, browser, draw, page, serve_app, wait_idle  # noqa: F401 - fixtures

LIVE, SERVER = "Live (in your browser)", "Server"


def run_without_export(runs_dir) -> runs.Run:
    """A copy of the shipped seed run without its model.onnx, activated."""
    source = runs.get_run(SEED_RUN).path
    shutil.copytree(source, runs_dir / "no-onnx", ignore=shutil.ignore_patterns(export.ONNX_FILE, export.EXPORT_FILE,
                                                                                   export.BROWSER_FILE))
    return runs.set_active("no-onnx")


def get(handler, **path_params):
    """A route handler's response to a GET, without a server (the test client needs httpx, not installed)."""
    from starlette.requests import Request
    return asyncio.run(handler(Request({"type": "http", "method": "GET", "path_params": path_params, "headers": []})))


def test_the_model_url_names_the_browser_model_by_its_content_and_is_served_immutable(runs_dir):
    run = runs.get_run(SEED_RUN)
    source = export.browser_path(run)
    assert source.name == export.BROWSER_FILE, "the shipped run has no checked smaller copy for the browser"
    name = f"{export.sha256(source)[:16]}.onnx"
    assert kmnist_live.model_url(run) == f"/kmnist/model/{name}"
    served = get(kmnist_live._serve_model, name=name)
    assert served.status_code == 200 and Path(served.path) == source, "the URL does not serve the run's model"
    assert "immutable" in served.headers["cache-control"], served.headers
    assert get(kmnist_live._serve_model, name="0" * 16 + ".onnx").status_code == 404
    assert kmnist_live.model_url(run_without_export(runs_dir)) is None


def test_the_runtime_is_served_under_its_version_only():
    tag = kmnist_live.runtime_tag()
    wasm = get(kmnist_live._serve_runtime, tag=tag, name="ort-wasm-simd-threaded.wasm")
    assert wasm.status_code == 200 and wasm.media_type == "application/wasm"
    assert "immutable" in wasm.headers["cache-control"], wasm.headers
    assert get(kmnist_live._serve_runtime, tag="stale", name="ort.wasm.min.mjs").status_code == 404, \
        "an old version's URL must not get today's runtime under a year-long cache"
    assert get(kmnist_live._serve_runtime, tag=tag, name="VERSION").status_code == 404, "only the runtime files"


def test_draw_defaults_to_live_when_the_run_has_an_export(runs_dir):
    runs.set_active(SEED_RUN)
    at = open_page()
    mode = at.radio(key="draw_mode")
    assert mode.value == LIVE and not mode.disabled
    assert "Draw a character on the canvas" in "\n".join(i.value for i in at.info)
    assert not [m for m in at.metric if m.label == "Prediction"], "no drawing yet, no prediction"


def test_draw_falls_back_to_the_server_without_an_export(runs_dir):
    run_without_export(runs_dir)
    at = open_page()
    mode = at.radio(key="draw_mode")
    assert mode.value == SERVER and mode.disabled, "a run without model.onnx must use the server path"
    assert at.file_uploader(key="upload") is not None


# Chromium


def open_live(page, url):
    page.goto(url)
    canvas = page.locator("[data-testid=live-canvas]")
    canvas.wait_for(state="visible")
    page.wait_for_function("() => window.kmnistLive && window.kmnistLive.loads.length > 0", timeout=60_000)
    wait_idle(page)
    return canvas


@pytest.mark.browser
def test_live_answers_while_the_pen_moves_and_python_gets_the_drawing(app_url, page, shared_data, drawable):
    want, plan = drawable
    canvas = open_live(page, app_url)
    top1 = page.locator("[data-testid=live-top1]")
    assert top1.inner_text() == "", "an answer before any drawing"
    box = canvas.bounding_box()
    down_answers = []
    for i, ((x0, y0), (x1, y1)) in enumerate(plan):
        page.mouse.move(box["x"] + x0, box["y"] + y0)
        page.mouse.down()
        page.mouse.move(box["x"] + x1, box["y"] + y1, steps=4)
        if i == 0:  # the pen is still down: the answer must already be there
            page.wait_for_function("() => window.kmnistLive.answers > 0")
            down_answers.append(top1.inner_text())
        page.mouse.up()
    assert down_answers and down_answers[0], "no answer while the pen was down"
    page.wait_for_function(f"() => window.kmnistLive.penUp.length >= {len(plan)}")
    assert top1.inner_text() == want, f"drew {want}, the live canvas says {top1.inner_text()!r}"
    # Python received the 28x28 and the probabilities: the page says what it got.
    said = page.get_by_text("Read in your browser as")
    said.wait_for()
    deadline = time.monotonic() + 30
    while want not in said.inner_text() and time.monotonic() < deadline:
        time.sleep(0.3)  # the rerun of an earlier pen-up can land first
    assert want in said.inner_text(), said.inner_text()
    page.screenshot(path=str(ARTIFACTS / "browser-live.png"))


@pytest.mark.browser
def test_live_page_asks_no_other_host(app_url, page):
    hosts = set()
    page.on("request", lambda r: hosts.add(urlparse(r.url).netloc) if r.url.startswith("http") else None)
    canvas = open_live(page, app_url)
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + 80, box["y"] + 80)
    page.mouse.down()
    page.mouse.move(box["x"] + 220, box["y"] + 220, steps=8)
    page.mouse.up()
    page.wait_for_function("() => window.kmnistLive.penUp.length > 0")
    wait_idle(page)
    assert hosts == {urlparse(app_url).netloc}, f"requests to other hosts: {hosts - {urlparse(app_url).netloc}}"


@pytest.mark.browser
def test_the_server_answers_until_the_browser_model_is_ready_then_the_browser_does(app_url, page, drawable):
    want, plan = drawable
    held = []  # the browser model's request, held back as on a slow link
    page.route("**/kmnist/model/**", lambda route: held.append(route))
    page.goto(app_url)
    canvas = page.get_by_test_id("live-canvas")
    canvas.wait_for(state="visible")
    wait_idle(page)
    draw(page, canvas, plan)
    top1 = page.get_by_test_id("live-top1")
    page.wait_for_function("() => window.kmnistLive.served > 0")
    page.get_by_text("Read on the server as").wait_for()
    wait_idle(page)
    assert held and page.get_by_test_id("live-ready").count() == 0, "the browser model was not held back"
    assert top1.inner_text() == want, f"drew {want}, the server's answer shows {top1.inner_text()!r}"
    assert "read on the server" in page.locator(".best .prob").inner_text()
    page.screenshot(path=str(ARTIFACTS / "browser-live-served.png"))
    held[0].continue_()
    page.get_by_test_id("live-ready").wait_for()
    page.wait_for_function("() => window.kmnistLive.answers > 0")  # the browser read the drawing on the canvas
    assert top1.inner_text() == want, f"the browser's model reads {top1.inner_text()!r}, the server read {want}"
    page.get_by_text("Read in your browser as").wait_for()


@pytest.mark.browser
def test_live_mode_is_served_from_a_read_only_checkout(browser, shared_data, tmp_path):
    probe = subprocess.run(["unshare", "--mount", "sh", "-c", f"mount --bind {tmp_path} {tmp_path}"],
                           capture_output=True, text=True)
    if probe.returncode:
        pytest.skip(f"cannot make a read-only bind mount here (needs root in a mount namespace): {probe.stderr}")
    (tmp_path / "checkout").mkdir()
    env = {"KMNIST_DATA_DIR": str(shared_data), "KMNIST_RUNS_DIR": str(tmp_path / "runs"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    ARTIFACTS.mkdir(exist_ok=True)
    with serve_app(env, ARTIFACTS / "streamlit-read-only.log", read_only=tmp_path / "checkout") as url:
        tab = browser.new_page(viewport={"width": 1400, "height": 1100})
        tab.set_default_timeout(60_000)
        canvas = open_live(tab, url)
        tab.get_by_test_id("live-ready").wait_for()
        draw(tab, canvas, [((80, 60), (220, 60)), ((150, 40), (150, 260)), ((60, 200), (240, 180))])
        tab.wait_for_function("() => window.kmnistLive.penUp.length >= 3")
        assert tab.get_by_test_id("live-top1").inner_text(), "no answer from the browser's model"
        tab.close()
