"""The Draw page's tutor in Chromium on the live canvas: trace a form, draw, correct the label, save, and find the
drawing on the Dataset page."""
from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from tests.test_browser import (ARTIFACTS, browser, open_page, page, prediction_value,  # noqa: F401
                                serve_app, wait_for_prediction, wait_idle)
from tests.test_live import open_live

pytestmark = pytest.mark.browser

CROSS = (((150, 60), (150, 240)), ((80, 120), (220, 120)))  # two strokes, in canvas pixels
PEN = 16  # the live canvas's default stroke width


def far_from_ink(size: int = 300, margin: float = PEN) -> np.ndarray:
    """Canvas pixels farther than `margin` from every stroke of CROSS: paper, whatever lies under it."""
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    near = np.zeros((size, size), bool)
    for (x0, y0), (x1, y1) in CROSS:
        d = np.array([x1 - x0, y1 - y0], np.float32)
        t = np.clip(((xx - x0) * d[0] + (yy - y0) * d[1]) / float(d @ d), 0, 1)
        near |= np.hypot(xx - (x0 + t * d[0]), yy - (y0 + t * d[1])) <= margin
    return ~near


def test_trace_draw_correct_save_and_find_it_on_the_dataset_page(page, shared_data, tmp_path):  # noqa: F811
    import shutil
    from kmnist import drawings, runs
    data = tmp_path / "data"
    shutil.copytree(shared_data / "kmnist6k", data / "kmnist6k")  # the drawings must land in a data dir of our own
    ARTIFACTS.mkdir(exist_ok=True)
    env = {"KMNIST_DATA_DIR": str(data), "KMNIST_RUNS_DIR": str(tmp_path / "runs"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    classes = runs.active_run().classes
    page.set_viewport_size({"width": 1400, "height": 1600})  # the answer and "Right?" below the canvas, in view
    with serve_app(env, ARTIFACTS / "streamlit-draw-tutor.log") as url:
        canvas = open_live(page, url)
        page.get_by_role("radio", name="Trace", exact=True).click()  # the Mode control
        wait_idle(page)
        assert page.locator("[data-testid=live-canvas]").count() == 1, "switching the mode mounted another canvas"
        trace = page.locator("[data-testid=live-trace]")
        trace.wait_for(state="visible")  # the form lies under the live canvas
        assert trace.get_attribute("src").startswith("data:image/png"), "no form to trace"
        page.get_by_text("Explain each answer").click()  # off by default in Live mode
        wait_idle(page)
        page.wait_for_function("() => Array.from(document.images).every(i => i.complete)")  # no layout shift left
        for (x0, y0), (x1, y1) in CROSS:
            box = canvas.bounding_box()
            page.mouse.move(box["x"] + x0, box["y"] + y0)
            page.mouse.down()
            page.mouse.move(box["x"] + x1, box["y"] + y1, steps=6)
            page.mouse.up()
            time.sleep(0.5)
        page.wait_for_function(f"() => window.kmnistLive.penUp.length >= {len(CROSS)}")
        top1 = page.locator("[data-testid=live-top1]").inner_text()
        assert top1, "the live canvas shows no answer"
        # Python got the drawing: the tutor's answer shows the browser's reading, with its 字母.
        value = wait_for_prediction(page, top1)
        assert value.count() and value.first.inner_text().strip() == top1, "the page shows another answer"
        page.get_by_text("from the kanji").first.wait_for()
        page.get_by_text("pixels that sway").first.wait_for()  # the saliency caption, not the switch's help
        page.screenshot(path=str(ARTIFACTS / "browser-draw-live-tutor.png"))
        other = next(c for c in classes if c.char != top1)
        page.get_by_role("combobox", name="Right? This drawing shows").click()
        page.get_by_role("option", name=other.label()).click()
        wait_idle(page)
        page.get_by_role("button", name=f"Correct it: save as {other.char}").click()
        page.get_by_text("Saved to your drawings").wait_for()
        page.screenshot(path=str(ARTIFACTS / "browser-draw-saved.png"))
        found = drawings.drawings(root=data)
        assert [d.char for d in found] == [other.char], f"saved {[d.char for d in found]}, wanted {other.char}"
        raw = np.asarray(Image.open(io.BytesIO(drawings.raw_png(found[0], root=data))).convert("L"))
        assert raw.shape == (300, 300), f"the raw canvas picture is {raw.shape}"
        assert raw[far_from_ink()].min() == 255, "the traced form got into the drawing the model reads"
        assert drawings.image(found[0], root=data).max() > 0, "the framed 28x28 is blank"

        open_page(page, url, "dataset")
        page.get_by_text("Your drawings").first.wait_for()
        page.get_by_text(f"Per character: {other.char} 1").wait_for()
        wait_idle(page)
        page.get_by_text("Latest drawings").first.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "browser-dataset-drawings.png"))
