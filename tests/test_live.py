"""The live Draw path: model publishing, the default mode and the server fallback, and the component in Chromium."""
from __future__ import annotations

import shutil
import time
from urllib.parse import urlparse

import pytest

import kmnist_live
from kmnist import export, runs
from tests.apptest import open_page
from tests.conftest import SEED_RUN
from tests.test_browser import ARTIFACTS, app_url, browser, page, wait_idle  # noqa: F401 - fixtures

LIVE, SERVER = "Live (in your browser)", "Server"


def run_without_export(runs_dir) -> runs.Run:
    """A copy of the shipped seed run without its model.onnx, activated."""
    source = runs.get_run(SEED_RUN).path
    shutil.copytree(source, runs_dir / "no-onnx", ignore=shutil.ignore_patterns(export.ONNX_FILE, export.EXPORT_FILE))
    return runs.set_active("no-onnx")


def test_publish_model_names_the_copy_by_its_content(runs_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(kmnist_live, "MODELS_DIR", tmp_path / "static-models")
    run = runs.get_run(SEED_RUN)
    url = kmnist_live.publish_model(run)
    digest = export.sha256(export.onnx_path(run))
    assert url == f"models/{digest[:16]}.onnx"
    copy = tmp_path / "static-models" / f"{digest[:16]}.onnx"
    assert export.sha256(copy) == digest
    assert kmnist_live.publish_model(run) == url and len(list(copy.parent.iterdir())) == 1, "published twice"
    assert kmnist_live.publish_model(run_without_export(runs_dir)) is None


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
