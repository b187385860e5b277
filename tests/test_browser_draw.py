"""The Draw page's tutor in Chromium: draw, correct the label, save, and find the drawing on the Dataset page."""
from __future__ import annotations

import time

import pytest

from tests.test_browser import (ARTIFACTS, CANVAS, HINT, browser, open_page, page, prediction_value,  # noqa: F401
                                serve_app, wait_idle)

pytestmark = pytest.mark.browser


def test_draw_correct_save_and_find_it_on_the_dataset_page(page, shared_data, tmp_path):  # noqa: F811
    import shutil
    from kmnist import drawings, runs
    data = tmp_path / "data"
    shutil.copytree(shared_data / "kmnist6k", data / "kmnist6k")  # the drawings must land in a data dir of our own
    ARTIFACTS.mkdir(exist_ok=True)
    env = {"KMNIST_DATA_DIR": str(data), "KMNIST_RUNS_DIR": str(tmp_path / "runs"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    classes = runs.active_run().classes
    with serve_app(env, ARTIFACTS / "streamlit-draw-tutor.log") as url:
        page.goto(url)
        canvas = page.locator(CANVAS)
        canvas.wait_for(state="visible")
        page.get_by_text(HINT).wait_for()
        wait_idle(page)
        box = canvas.bounding_box()
        for (x0, y0), (x1, y1) in (((150, 60), (150, 240)), ((80, 120), (220, 120))):
            page.mouse.move(box["x"] + x0, box["y"] + y0)
            page.mouse.down()
            page.mouse.move(box["x"] + x1, box["y"] + y1, steps=6)
            page.mouse.up()
            time.sleep(0.5)
        prediction_value(page).first.wait_for()
        wait_idle(page)
        predicted = prediction_value(page).first.inner_text().strip()
        other = next(c for c in classes if c.char != predicted)
        page.get_by_text(f"from the kanji").first.wait_for()  # the 字母 beside the prediction
        page.get_by_role("combobox", name="Right? This drawing shows").click()
        page.get_by_role("option", name=other.label()).click()
        wait_idle(page)
        page.get_by_role("button", name=f"Correct it: save as {other.char}").click()
        page.get_by_text("Saved to your drawings").wait_for()
        page.screenshot(path=str(ARTIFACTS / "browser-draw-saved.png"))
        found = drawings.drawings(root=data)
        assert [d.char for d in found] == [other.char], f"saved {[d.char for d in found]}, wanted {other.char}"
        assert drawings.raw_png(found[0], root=data), "the raw canvas picture is saved beside the 28x28"

        open_page(page, url, "dataset")
        page.get_by_text("Your drawings").first.wait_for()
        page.get_by_text(f"Per character: {other.char} 1").wait_for()
        wait_idle(page)
        page.get_by_text("Latest drawings").first.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "browser-dataset-drawings.png"))
