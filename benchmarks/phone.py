"""Benchmark the Draw page as a phone on a mobile link sees it: first answer, browser model ready, bytes, inference.

    KMNIST_DATA_DIR=/path/to/data python benchmarks/phone.py [--label after] [--app-dir DIR] [--out benchmarks/phone.json]

Starts `streamlit run app.py` from DIR (default: this checkout; a copy of an older commit measures the
before) with the shipped default model and a fresh runs dir, then drives Debian's Chromium with a phone
viewport and a fresh profile. The link is Chrome DevTools' "fast 4G" through CDP
(Network.emulateNetworkConditions: 9 Mbit/s down, 1.5 Mbit/s up, 60 ms latency).

- first visit: navigate, draw the first stroke of お (a real KMNIST test image, stroke by stroke) as soon as
  the canvas shows, then the rest; times since navigation of the first answer in `live-top1` (by the server
  or the browser) and of the browser model ready, bytes on the wire, what gzip would save on Streamlit's JS.
- return visit: the same profile opens the page again; when the model is ready, and what was fetched again.
- inference: on an unthrottled link, six characters drawn at CPU throttling 1x, 4x and 6x
  (Emulation.setCPUThrottlingRate), the component's own timings (window.kmnistLive).
The machine's load is recorded with the results: on a shared machine, timings move with it.
The JSON gains one entry per label; BENCHMARKS.md shows the before/after table.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.live import pct  # noqa: E402
from kmnist import datasets  # noqa: E402
from tests.sketch import strokes  # noqa: E402
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, draw, pick_drawable_test_image, serve_app  # noqa: E402

FAST_4G = {"offline": False, "latency": 60, "downloadThroughput": 9e6 / 8, "uploadThroughput": 1.5e6 / 8}
PHONE = {"viewport": {"width": 412, "height": 915}, "device_scale_factor": 2.625, "is_mobile": True,
         "has_touch": True}
# Milestones since navigation, noted in the page itself (every 20 ms), so that drawing does not hide them:
# the first answer shown (by the server or the browser) and the browser model ready.
WATCH = """
window.__phone = {};
const tick = setInterval(() => {
  const s = window.kmnistLive, now = performance.now();
  if (!s) return;
  if (window.__phone.answer === undefined && s.answers + (s.served || 0) > 0) window.__phone.answer = now;
  if (window.__phone.ready === undefined && s.loads.length > 0) window.__phone.ready = now;
  if (window.__phone.answer !== undefined && window.__phone.ready !== undefined) clearInterval(tick);
}, 20);
"""


def on_screen(canvas) -> None:
    """Scroll the canvas into the middle of the phone's screen: strokes off screen would never reach it."""
    canvas.evaluate("c => c.scrollIntoView({block: 'center'})")


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Wire:
    """Bytes the page fetched over the network (CDP encodedDataLength, headers included), per URL."""

    def __init__(self, cdp):
        self.urls, self.bytes = {}, {}
        cdp.on("Network.responseReceived", lambda e: self.urls.__setitem__(e["requestId"], e["response"]["url"]))
        cdp.on("Network.loadingFinished",
               lambda e: self.bytes.__setitem__(e["requestId"], e["encodedDataLength"]))

    def total(self) -> int:
        return int(sum(self.bytes.values()))

    def largest(self, n: int = 6) -> dict:
        per = {}
        for rid, size in self.bytes.items():
            name = self.urls.get(rid, "?").split("?")[0].rsplit("/", 1)[-1] or "/"
            per[name] = per.get(name, 0) + int(size)
        return dict(sorted(per.items(), key=lambda kv: -kv[1])[:n])

    def fetched(self, part: str) -> int:
        return int(sum(size for rid, size in self.bytes.items() if part in self.urls.get(rid, "")))

    def gzip_saving(self) -> dict:
        """What a compressing proxy would save on Streamlit's own frontend (/static/..., sent uncompressed):
        its bytes as sent now and gzipped at level 6 (nginx's gzip_comp_level 6)."""
        sent = zipped = 0
        for rid, size in self.bytes.items():
            url = self.urls.get(rid, "")
            if urlparse(url).path.startswith("/static/"):
                with urllib.request.urlopen(url) as r:
                    body = r.read()
                sent += size
                zipped += len(gzip.compress(body, 6)) if len(body) > 1000 else size
        return {"sent_mb": round(sent / 1e6, 2), "gzipped_mb": round(zipped / 1e6, 2)}


def throttled_page(context, network: dict | None):
    page = context.new_page()
    page.set_default_timeout(120_000)
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    if network:
        cdp.send("Network.emulateNetworkConditions", network)
    page.add_init_script(WATCH)
    return page, cdp, Wire(cdp)


def visit(context, url: str, plan=None) -> dict:
    """Open the Draw page on fast 4G; draw the plan as soon as the canvas shows; the milestones."""
    page, _, wire = throttled_page(context, FAST_4G)
    page.goto(url, wait_until="commit")
    canvas = page.get_by_test_id("live-canvas")
    canvas.wait_for(state="visible")
    out = {"canvas_s": page.evaluate("performance.now()") / 1000}
    if plan is not None:  # the first stroke at once, its answer, then the rest of the character
        on_screen(canvas)
        draw(page, canvas, plan[:1])
        out["first_pen_up_s"] = page.evaluate("performance.now()") / 1000
        page.wait_for_function("() => window.__phone.answer !== undefined")
        out["first_answer_s"] = page.evaluate("window.__phone.answer") / 1000
        draw(page, canvas, plan[1:])
        out["drawn_s"] = page.evaluate("performance.now()") / 1000
    page.wait_for_function("() => window.__phone.ready !== undefined")
    out["model_ready_s"] = page.evaluate("window.__phone.ready") / 1000
    if plan is not None:
        out["answer"] = page.get_by_test_id("live-top1").inner_text()
    out["model_load_ms"] = page.evaluate("window.kmnistLive.loads[0]")
    time.sleep(2)  # late requests (fonts, the next rerun) land in the byte count
    out["transferred_mb"] = round(wire.total() / 1e6, 2)
    out["largest_kb"] = {k: round(v / 1e3) for k, v in wire.largest().items()}
    out["model_and_runtime_fetched_kb"] = round((wire.fetched(".onnx") + wire.fetched("ort")) / 1e3, 1)
    if plan is not None:  # Streamlit's own frontend (/static/), sent uncompressed: what a proxy's gzip saves
        out["streamlit_static"] = wire.gzip_saving()
    page.close()
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in out.items()}


def inference(context, url: str, plans: list, rate: int) -> dict:
    """Draw the plans at a CPU throttling rate; the component's inference and pen-up -> answer times."""
    page, cdp, _ = throttled_page(context, None)
    page.goto(url)
    page.wait_for_function("() => window.kmnistLive && window.kmnistLive.loads.length > 0")
    canvas = page.get_by_test_id("live-canvas")
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": rate})
    for plan in plans:
        page.locator(".live .clear").click()
        page.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget]')")
        done = page.evaluate("window.kmnistLive.penUp.length") + len(plan)
        on_screen(canvas)
        draw(page, canvas, plan)
        page.wait_for_function(f"() => window.kmnistLive.penUp.length >= {done}")
    stats = page.evaluate("window.kmnistLive")
    page.close()
    return {"inference_ms": {"p50": pct(stats["infer"], 50), "p95": pct(stats["infer"], 95), "n": len(stats["infer"])},
            "pen_up_ms": {"p50": pct(stats["penUp"], 50), "p95": pct(stats["penUp"], 95), "n": len(stats["penUp"])}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", default="after", help="the entry's name in the JSON (before, after, ...)")
    ap.add_argument("--app-dir", default=str(ROOT), help="the checkout to serve (default: this one)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "phone.json"))
    ap.add_argument("--drawings", type=int, default=6, help="characters drawn per CPU throttling rate")
    ap.add_argument("--rates", default="1,4,6", help="CPU throttling rates to draw at")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright
    data = datasets.data_dir()
    tmp = Path(tempfile.mkdtemp())
    os.environ["KMNIST_RUNS_DIR"] = str(tmp / "runs")  # the shipped default is the active model here too
    want, plan = pick_drawable_test_image(data, "お")
    images = datasets.load_images("kmnist6k", "test", data)
    plans = [p for p in (strokes(img, size=300) for img in images[200:400]) if 10 <= len(p) <= 40][:args.drawings]
    env = {"KMNIST_DATA_DIR": str(data), "KMNIST_RUNS_DIR": str(tmp / "runs"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = {"app": args.app_dir, "drew": want, "load_before": load(), "cpus": os.cpu_count()}
    with serve_app(env, tmp / "server.log", root=Path(args.app_dir)) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(**PHONE)  # a fresh profile: empty HTTP cache
        result["first_visit"] = visit(context, url, plan)
        print("first visit", result["first_visit"], flush=True)
        result["return_visit"] = visit(context, url)
        print("return visit", result["return_visit"], flush=True)
        context.close()
        context = browser.new_context(**PHONE)
        result["cpu"] = {f"{rate}x": inference(context, url, plans, int(rate)) for rate in args.rates.split(",")}
        browser.close()
    result["load_after"] = load()
    out = Path(args.out)
    everything = json.loads(out.read_text()) if out.is_file() else {}
    everything[args.label] = result
    out.write_text(json.dumps(everything, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
