"""Draw page latency in Chromium: pen up → answer updated, and the first answer on a freshly opened page.

Starts `streamlit run app.py` (the shipped default model, a fresh runs dir), opens the Draw page in Debian's
Chromium through Playwright, switches it to Server mode, and draws. A stroke's time runs from the mouse-up to
the moment the page shows the new 28x28 "What the model sees" (its picture changes with every stroke), so it
includes the canvas's own send delay, the fragment's rerun and the browser's rendering. Writes
benchmarks/draw_latency.json and prints a markdown table for BENCHMARKS.md.

    python benchmarks/draw_latency.py [--strokes 30] [--first 8] [--out benchmarks/draw_latency.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.test_browser import (ARTIFACTS, CANVAS, CHROMIUM, CHROMIUM_ARGS, HINT, serve_app,  # noqa: E402
                                wait_idle)

SEEN = "[data-testid=stImage] img"  # the first is the answer's 28x28: Draw mode shows no picture above it
FIRST_IMAGE = "() => document.querySelector('[data-testid=stImage] img')?.src ?? null"


def strokes(n: int, seed: int = 0) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """n short strokes inside the canvas's middle, each one changing the drawing."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(70, 230, size=(n, 2))
    end = np.clip(start + rng.uniform(-60, 60, size=(n, 2)), 20, 280)
    return [(tuple(a), tuple(b)) for a, b in zip(start, end)]


def stroke(page, box, a, b) -> float:
    """Draw one stroke; return the time of the mouse-up (monotonic seconds)."""
    page.mouse.move(box["x"] + a[0], box["y"] + a[1])
    page.mouse.down()
    page.mouse.move(box["x"] + b[0], box["y"] + b[1], steps=6)
    t0 = time.monotonic()
    page.mouse.up()
    return t0


def open_draw(page, url: str):
    page.goto(url)
    page.get_by_text("Server", exact=True).click()  # the server canvas (Live, the default, has benchmarks/live.py)
    canvas = page.locator(CANVAS)
    canvas.wait_for(state="visible")
    page.get_by_text(HINT).wait_for()
    wait_idle(page)
    return canvas.bounding_box()


def seen_src(page) -> str | None:
    """The src of the first image on the page: the 28x28 "What the model sees" (the answer's first picture)."""
    return page.evaluate(FIRST_IMAGE)


def measure(url: str, n_strokes: int, n_first: int, browser) -> dict:
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.set_default_timeout(60_000)
    first = []
    for i in range(n_first):  # a fresh page each time: the first stroke until a Prediction shows
        box = open_draw(page, url)
        a, b = strokes(1, seed=100 + i)[0]
        t0 = stroke(page, box, a, b)
        page.locator(SEEN).first.wait_for(state="visible")
        first.append(time.monotonic() - t0)
    box = open_draw(page, url)
    plan = strokes(n_strokes + 1, seed=1)
    t0 = stroke(page, box, *plan[0])
    page.locator(SEEN).first.wait_for(state="visible")
    wait_idle(page)
    later = []
    for a, b in plan[1:]:
        before = seen_src(page)
        t0 = stroke(page, box, a, b)
        page.wait_for_function(f"old => ({FIRST_IMAGE})() !== old", arg=before, polling="raf")
        later.append(time.monotonic() - t0)
        wait_idle(page)  # the fragment run has ended before the next stroke starts
        time.sleep(0.3)  # a person's pause between strokes
    page.screenshot(path=str(ARTIFACTS / "bench-draw-latency.png"))
    page.close()
    return {"first_answer_ms": summary(first), "stroke_to_answer_ms": summary(later)}


def summary(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1000
    return {"n": len(ms), "p50": round(float(np.percentile(ms, 50)), 1), "p95": round(float(np.percentile(ms, 95)), 1),
            "min": round(float(ms.min()), 1), "max": round(float(ms.max()), 1)}


def markdown(result: dict) -> str:
    rows = [("pen up after a further stroke → answer updated", result["stroke_to_answer_ms"]),
            ("first stroke on a fresh page → Prediction shown", result["first_answer_ms"])]
    lines = ["| Draw page, Chromium, 2 cores | n | p50 ms | p95 ms | min | max |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {name} | {s['n']} | {s['p50']} | {s['p95']} | {s['min']} | {s['max']} |" for name, s in rows]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--strokes", type=int, default=30, help="strokes timed after the first (default %(default)s)")
    ap.add_argument("--first", type=int, default=8, help="fresh pages timed to their first answer")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "draw_latency.json"))
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright
    from tests.conftest import real_data_dir
    ARTIFACTS.mkdir(exist_ok=True)
    data = real_data_dir()
    with tempfile.TemporaryDirectory() as runs_dir:
        env = {"KMNIST_RUNS_DIR": runs_dir, "TF_CPP_MIN_LOG_LEVEL": "2"} | (
            {"KMNIST_DATA_DIR": str(data)} if data else {})
        with serve_app(env, ARTIFACTS / "bench-draw-latency-server.log") as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                result = measure(url, args.strokes, args.first, browser)
            finally:
                browser.close()
    result |= {"cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%d %H:%M")}
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
