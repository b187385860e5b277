"""The app in a real browser: Debian's Chromium driven by Playwright against `streamlit run app.py`.

Fixtures here are meant for reuse by every browser test: `serve_app` starts the app on a free
loopback port with chosen environment variables, `app_url` is one such server on the real data for
the whole module, and `page` is a fresh Chromium tab. Screenshots go to test-artifacts/ (gitignored).
Without Chromium or Playwright the tests skip, except under CI (env CI set), where they fail.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import png

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
START_TIMEOUT = 90  # seconds for the server to answer its health check (slow on a busy 2-core machine)
CANVAS = "[data-testid=stBidiComponentIsolated] canvas.upper-canvas"  # the drawing layer (in a shadow root)
HINT = "Draw a character on the canvas"
CANVAS_PX = 300  # pages/draw.py CANVAS_PX
PEN = 16  # the stroke-width slider's default
STROKES = (25, 45)  # strokes a chosen character takes to draw


def unavailable(reason: str) -> None:
    """Skip, but fail under CI: there the browser test is required to run."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so the browser tests must run")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Run as `sh -c READ_ONLY sh CHECKOUT MOUNT CMD...` in a private mount namespace: the checkout bind-mounted
# read-only (denied even to root, unlike chmod), the write refused there checked, then CMD run from it.
READ_ONLY = ('mount --bind "$1" "$2" && mount -o remount,bind,ro "$2" && cd "$2" || exit 3; '
             'if touch .write-probe 2>/dev/null; then rm -f .write-probe; echo "the mount is writable"; exit 3; fi; '
             'shift 2; exec "$@"')


@contextmanager
def serve_app(env: dict[str, str], log_path: Path, read_only: Path | None = None,
              root: Path = ROOT) -> Iterator[str]:
    """Run `streamlit run app.py` headless on a free loopback port with extra env vars; yield its URL.

    With `read_only` (an empty directory), the app runs from a read-only bind mount of the checkout there;
    `root` is the checkout to run (another commit's copy, for a benchmark's before)."""
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    if read_only is not None:
        cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", READ_ONLY, "sh", str(root),
               str(read_only), *cmd]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=root, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"streamlit exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not answer within {START_TIMEOUT} s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, shared_data) -> Iterator[str]:
    """One app server for the module: real data, an empty runs dir (so the shipped default model is active)."""
    ARTIFACTS.mkdir(exist_ok=True)
    runs = tmp_path_factory.mktemp("browser-runs")
    env = {"KMNIST_DATA_DIR": str(shared_data), "KMNIST_RUNS_DIR": str(runs), "TF_CPP_MIN_LOG_LEVEL": "2"}
    with serve_app(env, ARTIFACTS / "streamlit-server.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium through Playwright (never a downloaded browser)."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed")
    if not Path(CHROMIUM).is_file():
        unavailable(f"Chromium is not at {CHROMIUM} (apt install chromium)")
    with sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Error as e:
            unavailable(f"Chromium does not start: {e}")
        yield b
        b.close()


@pytest.fixture
def page(browser):
    tab = browser.new_page(viewport={"width": 1400, "height": 1100})
    tab.set_default_timeout(60_000)
    yield tab
    tab.close()


def wait_idle(page) -> None:
    """Until Streamlit has finished running the script (its status widget disappears)."""
    page.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget]')", timeout=60_000)


def open_page(page, url: str, path: str) -> None:
    """Open a page by its URL (a deep link works as the first request too: see test_cold_deep_link)."""
    page.goto(f"{url}/{path}")
    page.locator("[data-testid=stSidebar]").get_by_text("Active model").wait_for()


TITLES = {"": "Draw a character", "dataset": "Datasets", "characters": "Characters", "embedding": "Embedding",
          "evaluation": "Evaluation", "weak_classes": "Weak classes", "training": "Training"}  # URL path -> heading
NAVIGATION = ["Draw", "Dataset", "Characters", "Embedding", "Evaluation", "Weak classes", "Training"]  # app.py's menu


@pytest.mark.parametrize("path", list(TITLES))
def test_cold_deep_link_shows_the_page_in_the_frame(path, browser, shared_data, tmp_path):
    """A page's URL as the very first request after the server starts gets app.py's frame, sidebar and menu.

    (A folder named pages/ beside app.py is Streamlit's legacy layout until app.py has run once.)
    """
    ARTIFACTS.mkdir(exist_ok=True)
    env = {"KMNIST_DATA_DIR": str(shared_data), "KMNIST_RUNS_DIR": str(tmp_path / "runs"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    with serve_app(env, ARTIFACTS / "streamlit-cold.log") as url:
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            tab.goto(f"{url}/{path}")
            tab.get_by_role("heading", name=TITLES[path], level=1).wait_for(timeout=90_000)
            sidebar = tab.locator("[data-testid=stSidebar]")
            sidebar.get_by_text("Active model").wait_for()
            wait_idle(tab)
            tab.screenshot(path=str(ARTIFACTS / f"browser-cold-{path or 'home'}.png"))
            assert tab.url.rstrip("/") == f"{url}/{path}".rstrip("/"), f"asked for /{path}, landed on {tab.url}"
            links = tab.locator("[data-testid=stSidebarNavLink]")
            names = [t.strip() for t in links.all_inner_texts()]
            assert [n.splitlines()[-1].strip() for n in names] == NAVIGATION, f"not app.py's menu: {names}"
            assert tab.title() == "Kuzushiji lab", "app.py's page config did not apply"
        finally:
            tab.close()


def prediction_value(page):
    return page.locator("[data-testid=stMetric]").filter(has_text="Prediction").locator(
        "[data-testid=stMetricValue]")


def wait_for_prediction(page, want: str, timeout: float = 60, pause: float = 0.3):
    """The Prediction metric, once it reads `want` or the timeout passes: each stroke end reruns the page, and
    the rerun of an earlier stroke can land first."""
    value = prediction_value(page)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        wait_idle(page)
        if value.count() and value.first.inner_text().strip() == want:
            break
        time.sleep(pause)
    return value


def draw(page, canvas, plan) -> None:
    """Draw the strokes of a sketch plan on a canvas with the mouse, one drag per stroke."""
    box = canvas.bounding_box()
    for (x0, y0), (x1, y1) in plan:
        page.mouse.move(box["x"] + x0, box["y"] + y0)
        page.mouse.down()
        page.mouse.move(box["x"] + x1, box["y"] + y1, steps=4)
        page.mouse.up()


def pick_drawable_test_image(data_root: Path, char: str | None = None):
    """A real KMNIST test image (of `char`, if given) whose drawn strokes the active model reads right, with margin.

    Chosen through the same path the browser takes (strokes, canvas-like rendering, framing, model),
    so the test checks the app rather than the model's luck. A middling stroke count skips faint,
    sparse characters (a few dots can still be read right) and very long drawings.
    """
    from kmnist import datasets, runs
    from kmnist.predict import predict_proba
    from kmnist.preprocess import prepare
    from tests.sketch import render, strokes
    run = runs.shipped_default()  # what the servers here answer with: they start on an empty runs dir
    model = run.load_model()
    images = datasets.load_images("kmnist6k", "test", data_root)[:200]
    labels = datasets.load_labels("kmnist6k", "test", data_root)[:200]
    chars = [c.char for c in datasets.load_classes("kmnist6k", data_root)]
    known = [c.char for c in run.classes]
    plans = [strokes(img, size=CANVAS_PX) for img in images]
    drawn = np.stack([prepare(render(s, size=CANVAS_PX, width=PEN), run.framing) for s in plans])
    probs, direct = predict_proba(model, drawn), predict_proba(model, images).argmax(axis=1)
    top2 = np.sort(probs, axis=1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]  # not the top probability: label smoothing caps it near 0.9
    for i, plan in enumerate(plans):
        want = chars[labels[i]]
        if (STROKES[0] <= len(plan) <= STROKES[1] and want in known and known[probs[i].argmax()] == want
                and char in (None, want)
                and known[direct[i]] == want and margin[i] > 0.5):
            return want, plan
    pytest.fail("no KMNIST test image among the first 200 survives drawing with a 0.5 probability margin")


def test_drawing_a_real_character_predicts_it_and_clear_resets(app_url, page, shared_data, drawable):
    want, plan = drawable
    page.goto(app_url)
    page.get_by_text("Server", exact=True).click()  # the drawable-canvas path (Live is the default)
    canvas = page.locator(CANVAS)
    canvas.wait_for(state="visible")
    page.get_by_text(HINT).wait_for()
    wait_idle(page)
    box = canvas.bounding_box()
    assert box and round(box["width"]) == CANVAS_PX, f"canvas box {box}, expected {CANVAS_PX} px wide"
    draw(page, canvas, plan)
    value = wait_for_prediction(page, want)  # the last stroke's rerun must show the character drawn
    page.locator("[data-testid=stPlotlyChart] .main-svg").first.wait_for()  # the top-5 chart, for the screenshot
    page.screenshot(path=str(ARTIFACTS / "browser-draw.png"))
    assert value.count(), "no Prediction metric after drawing"
    assert value.first.inner_text().strip() == want, f"drew {want}, the app says {value.first.inner_text()!r}"
    assert page.get_by_text("What the model sees").count(), "the 28x28 model input is not shown"

    page.get_by_role("button", name="Clear").click()
    page.get_by_text(HINT).wait_for()
    wait_idle(page)
    assert prediction_value(page).count() == 0, "a prediction is still shown after Clear"
    page.locator(CANVAS).wait_for(state="visible")  # a fresh canvas replaces the drawn one
    page.screenshot(path=str(ARTIFACTS / "browser-cleared.png"))


def test_clicking_a_confusion_matrix_cell_shows_its_images(app_url, page):
    from kmnist import runs
    from kmnist.evaluate import top_confusions
    run = runs.active_run()
    cm = run.report.confusion_matrix
    n = len(cm)
    cell = top_confusions(cm, k=2)[1]  # not the first: that cell is shown before any click
    want = f"{cm[cell.true, cell.predicted]:,} test images of {run.classes[cell.true].char}"
    open_page(page, app_url, "evaluation")
    points = page.locator("[data-testid=stPlotlyChart] .scatterlayer .trace").nth(1).locator("path.point")
    points.first.wait_for()
    wait_idle(page)
    # The mistakes trace holds the off-diagonal cells row by row.
    marker = points.nth(cell.true * (n - 1) + cell.predicted - (cell.predicted > cell.true))
    marker.scroll_into_view_if_needed()
    point = marker.bounding_box()
    # A real click at the marker: Plotly's drag layer on top takes the events, as it does for a user.
    page.mouse.click(point["x"] + point["width"] / 2, point["y"] + point["height"] / 2)
    page.get_by_text(want).wait_for()  # the cell's sentence, so the click reached the page
    wait_idle(page)
    for name, index in (("True class", cell.true), ("Predicted class", cell.predicted)):
        c = run.classes[index]
        picker = page.get_by_role("combobox", name=name)
        assert picker.input_value() == f"{c.char} {c.romaji}", f"the {name} picker did not follow the click"
    assert page.get_by_text("(showing").count(), "the cell's test images are not shown"
    page.set_viewport_size({"width": 1400, "height": 2600})  # the app scrolls inside; a tall window shows it all
    page.screenshot(path=str(ARTIFACTS / "browser-evaluation.png"))


# Embedding and Training pages (helper "embed+training")


def test_embedding_maps_render_and_a_lasso_shows_the_images(app_url, page):
    open_page(page, app_url, "embedding")
    plots = page.locator(".js-plotly-plot")
    plots.nth(1).wait_for(state="visible")
    wait_idle(page)
    assert plots.count() == 2, "Kuzushiji beside MNIST"
    box = plots.first.bounding_box()
    cx, cy, r = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, min(box["width"], box["height"]) / 3
    page.mouse.move(cx - r, cy - r)
    page.mouse.down()
    for x, y in ((cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r), (cx - r, cy - r)):
        page.mouse.move(x, y, steps=8)
    page.mouse.up()
    selected = page.get_by_text(" selected (")
    selected.wait_for()
    wait_idle(page)
    page.screenshot(path=str(ARTIFACTS / "browser-embedding.png"))
    selected.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "browser-embedding-selection.png"))


def test_training_page_trains_in_the_background_and_activates(page, tmp_path):
    from tests.conftest import write_dataset
    ARTIFACTS.mkdir(exist_ok=True)
    write_dataset(tmp_path / "data", "tiny10", 10, 30, 10, seed=1)
    env = {"KMNIST_DATA_DIR": str(tmp_path / "data"), "KMNIST_RUNS_DIR": str(tmp_path / "runs"),
           "KMNIST_CACHE_DIR": str(tmp_path / "cache"), "KMNIST_ALLOW_TRAINING": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    with serve_app(env, ARTIFACTS / "streamlit-training.log") as url:
        open_page(page, url, "training")
        start = page.get_by_role("button", name="Start training")
        start.wait_for()
        wait_idle(page)
        epochs = page.get_by_label("Epochs")
        epochs.fill("2")
        epochs.press("Tab")
        start.click()
        heading = page.get_by_role("heading", name=re.compile(r"Run tiny10-seed-\S+: completed"))
        heading.wait_for(timeout=180_000)  # the fragment polls status.json until the job is done
        wait_idle(page)
        run_id = re.search(r"Run (\S+): completed", heading.inner_text()).group(1)
        # The heading can land a rerun before the metrics below it; give the page that rerun.
        page.get_by_text("2 of 2").first.wait_for(timeout=30_000)  # the result panel and the runs table
        wait_idle(page)
        page.screenshot(path=str(ARTIFACTS / "browser-training.png"), full_page=True)
        page.get_by_role("button", name="Make this the active model").click()
        page.get_by_role("button", name="Make it active anyway").click()  # it scores below the shipped default
        sidebar = page.locator("[data-testid=stSidebar]")
        sidebar.get_by_text(run_id).wait_for()
        assert sidebar.get_by_text("trained on tiny10").count(), "the sidebar names the new active model"
        page.get_by_test_id("stAlertContentSuccess").get_by_text("is the active model").wait_for()
        wait_idle(page)
        page.screenshot(path=str(ARTIFACTS / "browser-training-activated.png"), full_page=True)


# Models, runs and weak classes (issue 10)


@pytest.fixture
def models_url(tmp_path, shared_data) -> Iterator[str]:
    """A fresh server whose runs dir holds one cancelled run (scores copied from the shipped seed run)."""
    from kmnist import files, runs
    ARTIFACTS.mkdir(exist_ok=True)
    src = runs.SHIPPED / "kmnist6k-seed"
    run = tmp_path / "runs" / "kmnist6k-seed-cancelled"
    run.mkdir(parents=True)
    for name in (runs.CONFIG_FILE, runs.CLASSES_FILE, runs.METRICS_FILE):
        (run / name).write_bytes((src / name).read_bytes())
    files.write_json(run / runs.STATUS_FILE, {"state": "cancelled", "epoch": 1, "epochs": 3, "batch": 10,
                                              "batches": 43})
    env = {"KMNIST_DATA_DIR": str(shared_data), "KMNIST_RUNS_DIR": str(tmp_path / "runs"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    with serve_app(env, ARTIFACTS / "streamlit-models.log") as url:
        yield url


def sidebar_model(page) -> str:
    return page.locator("[data-testid=stSidebar] strong").first.inner_text()


def test_activating_an_older_run_and_back_to_the_shipped_default(models_url, page):
    from kmnist import runs
    default = runs.DEFAULT_POINTER.read_text().strip()
    open_page(page, models_url, "evaluation")
    wait_idle(page)
    page.get_by_role("combobox", name="Run").click()
    page.get_by_role("option", name=re.compile(r"^kmnist6k-seed · completed")).click()
    wait_idle(page)
    page.get_by_role("button", name="Make this the active model").click()
    ask = page.get_by_text("make kmnist6k-seed the active model anyway?")
    ask.wait_for()
    seed = runs.get_run("kmnist6k-seed").metrics["val_accuracy"]
    want = f"validation accuracy {runs.get_run(default).metrics['val_accuracy']:.1%} → {seed:.1%}"
    assert want in ask.inner_text(), ask.inner_text()
    page.screenshot(path=str(ARTIFACTS / "browser-activate-confirm.png"), full_page=True)
    assert sidebar_model(page) == default, "nothing changes before the answer"
    page.get_by_role("button", name="Make it active anyway").click()
    page.get_by_text("kmnist6k-seed is the active model").wait_for()
    page.locator("[data-testid=stSidebar]").get_by_text("kmnist6k-seed", exact=True).wait_for()

    open_page(page, models_url, "training")
    back = page.get_by_role("button", name=f"Back to the shipped default ({default})")
    back.wait_for()
    wait_idle(page)
    table = page.locator("[data-testid=stDataFrame]").first
    table.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "browser-runs.png"), full_page=True)
    back.click()
    page.locator("[data-testid=stSidebar]").get_by_text(default, exact=True).wait_for()
    wait_idle(page)
    assert sidebar_model(page) == default


def test_a_cancelled_run_shows_its_state_and_true_progress(models_url, page):
    open_page(page, models_url, "evaluation")
    wait_idle(page)
    page.get_by_role("combobox", name="Run").click()
    option = page.get_by_role("option", name=re.compile(r"^kmnist6k-seed-cancelled"))
    label = option.inner_text()
    assert "cancelled" in label and "epoch 1 of 3, batch 10 of 43" in label, label
    option.click()
    page.get_by_text("saved no model (cancelled)").wait_for()
    wait_idle(page)
    page.screenshot(path=str(ARTIFACTS / "browser-cancelled.png"))


def test_weak_classes_open_on_the_weakest(app_url, page):
    open_page(page, app_url, "weak_classes")
    page.get_by_text("with the lowest F1").wait_for()
    wait_idle(page)
    rows = page.locator("[data-testid=stDataFrame]").first
    rows.wait_for()
    assert not page.get_by_text("No class of").count(), "Weak classes opened empty"
    page.set_viewport_size({"width": 1400, "height": 2600})
    page.screenshot(path=str(ARTIFACTS / "browser-weak-classes.png"))


# Faults (issue 12)


@pytest.fixture
def broken_url(tmp_path, shared_data) -> Iterator[str]:
    """A fresh server whose active model, chosen by writing the ACTIVE pointer directly, has a truncated model.keras.

    It is a copy of the shipped seed run, not of the default, so its model.onnx differs from the default's.
    """
    from kmnist import runs
    ARTIFACTS.mkdir(exist_ok=True)
    root = tmp_path / "server-runs"  # not the test's own runs dir, where the shipped default stays active
    broken = root / "broken-seed"
    shutil.copytree(runs.SHIPPED / "kmnist6k-seed", broken)
    model = broken / runs.MODEL_FILE
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    (root / "ACTIVE").write_text("broken-seed\n")
    env = {"KMNIST_DATA_DIR": str(shared_data), "KMNIST_RUNS_DIR": str(root), "TF_CPP_MIN_LOG_LEVEL": "3"}
    with serve_app(env, ARTIFACTS / "streamlit-broken.log") as url:
        yield url


def test_draw_with_a_broken_active_model_warns_once_and_answers_with_the_default(broken_url, page, shared_data,
                                                                              drawable):
    from kmnist import runs
    default = runs.shipped_default()
    want, plan = drawable  # drawn and read by the shipped default
    served = []
    page.on("request", lambda r: served.append(r.url.rsplit("/", 1)[-1]) if r.url.endswith(".onnx") else None)
    page.goto(broken_url)
    canvas = page.locator("[data-testid=live-canvas]")
    canvas.wait_for(state="visible")
    page.wait_for_function("() => window.kmnistLive && window.kmnistLive.loads.length > 0", timeout=60_000)
    wait_idle(page)
    warnings = page.locator("[data-testid=stAlertContentWarning]")
    assert warnings.count() == 1, f"one warning, not {warnings.all_inner_texts()}"
    text = warnings.first.inner_text().strip()
    assert "\n" not in text, f"one line: {text!r}"
    assert "broken-seed" in text and "truncated" in text and f"shipped default {default.id}" in text, text
    assert "Traceback" not in page.content() and str(broken_url) not in text

    def content_name(run) -> str:  # kmnist_live serves the run's browser model under its content hash
        from kmnist.export import browser_path
        return hashlib.sha256(browser_path(run).read_bytes()).hexdigest()[:16] + ".onnx"

    seed = content_name(runs.get_run("kmnist6k-seed"))
    assert served == [content_name(default)], f"the browser must run the default's model, not {seed}: {served}"
    assert page.get_by_text(f"Model {default.id} ready in your browser").count(), "the live canvas names the default"

    draw(page, canvas, plan)
    page.wait_for_function(f"() => window.kmnistLive.penUp.length >= {len(plan)}")
    top1 = page.locator("[data-testid=live-top1]")
    assert top1.inner_text() == want, f"drew {want}, the live canvas says {top1.inner_text()!r}"
    said = page.get_by_text("Read in your browser as")
    said.wait_for()
    wait_idle(page)
    assert page.locator("[data-testid=stAlertContentWarning]").count() == 1, "still the one warning after drawing"
    page.screenshot(path=str(ARTIFACTS / "browser-broken-model.png"))


# Draw on a phone, and drawing after an upload (issue 10 §3)

PHONE = {"width": 390, "height": 844}  # a phone's viewport in CSS pixels


def test_cold_phone_draw_page_shows_the_answer_in_the_first_screen(browser, shared_data, tmp_path, drawable):
    """The first request after the server starts, on a 390x844 touch phone: one character drawn, and its
    answer lies within the first screen, without scrolling."""
    want, plan = drawable
    ARTIFACTS.mkdir(exist_ok=True)
    env = {"KMNIST_DATA_DIR": str(shared_data), "KMNIST_RUNS_DIR": str(tmp_path / "runs"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    with serve_app(env, ARTIFACTS / "streamlit-phone.log") as url:
        phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
        page = phone.new_page()
        page.set_default_timeout(90_000)
        try:
            page.goto(url)
            canvas = page.locator("[data-testid=live-canvas]")
            canvas.wait_for(state="visible")
            page.wait_for_function("() => window.kmnistLive && window.kmnistLive.loads.length > 0", timeout=90_000)
            wait_idle(page)
            page.screenshot(path=str(ARTIFACTS / "browser-phone-cold.png"))
            box = canvas.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], f"the canvas overflows: {box}"
            assert box["y"] + box["height"] <= PHONE["height"], f"the canvas is below the fold: {box}"
            draw(page, canvas, plan)
            page.wait_for_function(f"() => window.kmnistLive.penUp.length >= {len(plan)}")
            top1 = page.locator("[data-testid=live-top1]")
            assert top1.inner_text() == want, f"drew {want}, the live canvas says {top1.inner_text()!r}"
            page.get_by_text("Read in your browser as").wait_for()
            wait_idle(page)
            page.screenshot(path=str(ARTIFACTS / "browser-phone-draw.png"))
            # Scrolling stays put, so the bounding box is where the answer sits on the first screen.
            scrolled = page.evaluate("() => Array.from(document.querySelectorAll('*')).some(e => e.scrollTop > 0)"
                                     " || window.scrollY > 0")
            assert not scrolled, "the page scrolled while drawing"
            answer = top1.bounding_box()
            assert answer and answer["y"] >= 0 and answer["y"] + answer["height"] <= PHONE["height"], (
                f"on a {PHONE['width']}x{PHONE['height']} phone the answer is at {answer}: below the first screen")
        finally:
            phone.close()


def test_drawing_after_an_upload_reads_the_drawing(app_url, page, shared_data, tmp_path, drawable):
    """Upload one character and see it read; then draw another: the answer follows the drawing and the note
    says the upload is set aside."""
    from kmnist import datasets, runs
    from kmnist.predict import predict_proba
    want, plan = drawable
    run = runs.active_run()
    known = [c.char for c in run.classes]
    images = datasets.load_images("kmnist6k", "test", shared_data)[:200]
    read = predict_proba(run.load_model(), images).argmax(axis=1)
    first = next(i for i in range(len(images)) if known[read[i]] != want)  # the model reads another character
    uploaded = known[read[first]]
    picture = tmp_path / "one-character.png"
    picture.write_bytes(png(images[first]))

    page.goto(app_url)
    canvas = page.locator("[data-testid=live-canvas]")
    canvas.wait_for(state="visible")
    page.wait_for_function("() => window.kmnistLive && window.kmnistLive.loads.length > 0", timeout=60_000)
    wait_idle(page)
    page.locator("[data-testid=stFileUploader] input[type=file]").set_input_files(str(picture))
    page.get_by_text(f"Reading the uploaded file {picture.name}").wait_for()
    wait_idle(page)
    value = prediction_value(page)
    assert value.first.inner_text().strip() == uploaded, f"uploaded {uploaded}, the app says {value.first.inner_text()!r}"

    draw(page, canvas, plan)
    page.wait_for_function(f"() => window.kmnistLive.penUp.length >= {len(plan)}")
    note = page.get_by_text(f"Reading your drawing; the uploaded file {picture.name} is set aside.")
    note.wait_for()
    value = wait_for_prediction(page, want)
    page.screenshot(path=str(ARTIFACTS / "browser-draw-after-upload.png"), full_page=True)
    assert value.first.inner_text().strip() == want, f"drew {want} after uploading {uploaded}, the app says " \
        f"{value.first.inner_text()!r}"
    assert page.locator("[data-testid=live-top1]").inner_text() == want, "the live canvas reads another character"
    assert note.count() == 1 and not page.get_by_text("Reading the uploaded file").count(), "the note still says upload"
