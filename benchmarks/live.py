"""Benchmark the live Draw path in Chromium: model load, inference, pen up -> answer, JS-vs-Python agreement.

    KMNIST_DATA_DIR=/path/to/data python benchmarks/live.py [--drawings 20] [--out benchmarks/live.json]

Starts `streamlit run app.py` on a free port (shipped default model), drives Debian's Chromium, draws
held-out KMNIST test characters stroke by stroke (tests/sketch.py), and reads the timings the component
records in `window.kmnistLive`. Agreement: for each drawing, the browser's top-1 against the server path's
top-1 on the same canvas picture (the PNG the component sends, framed by `prepare`, scored by the same
ONNX model). Writes JSON; paste the table into BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import base64
import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kmnist import datasets, runs  # noqa: E402
from kmnist.export import onnx_path  # noqa: E402
from kmnist.predict import OnnxPredictor  # noqa: E402
from kmnist.preprocess import prepare  # noqa: E402
from tests.sketch import strokes  # noqa: E402
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, draw, serve_app  # noqa: E402

LOADED = "() => window.kmnistLive && window.kmnistLive.loads.length > 0"


def pct(values, q):
    return round(float(np.percentile(values, q)), 2) if len(values) else None


def headers(url: str) -> dict:
    with urllib.request.urlopen(url) as r:
        return {k: r.headers.get(k) for k in ("ETag", "Last-Modified", "Cache-Control", "Content-Type")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--drawings", type=int, default=20)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "live.json"))
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright
    data = datasets.data_dir()
    images = datasets.load_images("kmnist6k", "test", data)
    labels = datasets.load_labels("kmnist6k", "test", data)
    run = runs.get_run(runs.DEFAULT_POINTER.read_text().strip())
    predictor = OnnxPredictor(onnx_path(run))
    known = [c.char for c in run.classes]
    picks = np.random.default_rng(0).permutation(len(images))
    plans = []
    for i in picks:
        plan = strokes(images[i], size=300)
        if 10 <= len(plan) <= 40:
            plans.append((known[labels[i]], plan))
        if len(plans) == args.drawings:
            break

    tmp = Path(tempfile.mkdtemp())
    env = {"KMNIST_DATA_DIR": str(data), "KMNIST_RUNS_DIR": str(tmp / "runs"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    result: dict = {"model": run.id, "drawings": len(plans)}
    with serve_app(env, tmp / "server.log") as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        cold, warm = [], []
        for _ in range(3):
            ctx = browser.new_context()  # empty HTTP cache: a first visit
            page = ctx.new_page()
            page.goto(url)
            page.wait_for_function(LOADED, timeout=120_000)
            cold.append(page.evaluate("window.kmnistLive.loads[0]"))
            page.reload()  # same cache: a return visit
            page.wait_for_function(LOADED, timeout=120_000)
            warm.append(page.evaluate("window.kmnistLive.loads[0]"))
            ctx.close()
        result["load_cold_ms"] = {"p50": pct(cold, 50), "all": [round(v) for v in cold]}
        result["load_warm_ms"] = {"p50": pct(warm, 50), "all": [round(v) for v in warm]}
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        page.goto(url)
        page.wait_for_function(LOADED, timeout=120_000)
        canvas = page.locator("[data-testid=live-canvas]")
        top1 = page.locator("[data-testid=live-top1]")
        agree, right_js, right_py, draw_seconds = 0, 0, 0, 0.0
        for want, plan in plans:
            page.locator(".live .clear").click()
            page.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget]')")
            pen_ups = page.evaluate("window.kmnistLive.penUp.length")
            started = time.perf_counter()
            draw(page, canvas, plan)
            page.wait_for_function(f"() => window.kmnistLive.penUp.length >= {pen_ups + len(plan)}")
            draw_seconds += time.perf_counter() - started
            js = top1.inner_text()
            png = canvas.evaluate("c => c.toDataURL('image/png')")
            py = known[int(predictor(prepare(base64.b64decode(png.partition(",")[2]), run.framing)).argmax())]
            agree += js == py
            right_js += js == want
            right_py += py == want
        stats = page.evaluate("window.kmnistLive")
        answers = stats["answers"]
        result["inference_ms"] = {"p50": pct(stats["infer"], 50), "p95": pct(stats["infer"], 95), "n": len(stats["infer"])}
        result["pen_up_to_answer_ms"] = {"p50": pct(stats["penUp"], 50), "p95": pct(stats["penUp"], 95),
                                         "n": len(stats["penUp"])}
        result["answers_per_s_while_drawing"] = round(answers / draw_seconds, 1)
        result["top1_js_vs_python"] = f"{agree}/{len(plans)}"
        result["top1_right"] = {"js": f"{right_js}/{len(plans)}", "python": f"{right_py}/{len(plans)}"}
        fetched = page.evaluate("Array.from(performance.getEntriesByType('resource')).map(e => e.name)")
        browser.close()
        result["static_headers"] = {"wasm": headers(next(n for n in fetched if n.endswith(".wasm"))),
                                    "model": headers(next(n for n in fetched if n.endswith(".onnx")))}
    Path(args.out).write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
