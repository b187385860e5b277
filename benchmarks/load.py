"""Load on the Draw page: N Chromium sessions drawing real characters at once, in each Draw mode.

    KMNIST_DATA_DIR=/path/to/data python benchmarks/load.py [--sessions 1 4 8] [--strokes 20]
        [--modes live server] [--keras] [--out benchmarks/load.json] [--no-markdown]

For every mode and session count it starts a fresh `streamlit run app.py` on a loopback port (shipped
default model), warms it up with one session, then opens N Chromium contexts (one browser, one context
per visitor) that draw held-out KMNIST test characters stroke by stroke (tests/sketch.py), all at once.
Each session waits for the answer to a stroke, pauses as a person would, and draws the next one:

- Server mode: the answer is the new "What the model sees" picture the page shows after the pen lifts
  (streamlit-drawable-canvas sends the drawing, the page reruns and runs the model).
- Live mode (the default): the answer is the component's own pen up -> top-1 shown time
  (`window.kmnistLive.penUp`); the page rerun each pen-up causes is timed too ("server round trip":
  pen up -> the page's "Read in your browser as" line updated).

Recorded per run: answers, errors (answer time-outs, page errors, Streamlit exception boxes), latency
p50/p95, server RSS (/proc/PID/status) before and after, and server CPU seconds (utime+stime of
/proc/PID/stat, all threads) per stroke, plus whether onnxruntime or TensorFlow was ever loaded into
the server (its /proc/PID/maps): the live path must run no model on the server. `--keras` first opens
the Evaluation page, which imports Keras into the server, as any lab visitor would.

Bounded: each run stops drawing after --max-seconds, an answer waits at most --answer-timeout seconds,
everything is on 127.0.0.1 and every server and browser is stopped at the end. Writes the JSON and,
unless --no-markdown, the table between the load markers of BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kmnist import datasets, runs  # noqa: E402
from kmnist.export import onnx_path  # noqa: E402
from kmnist.predict import OnnxPredictor  # noqa: E402
from kmnist.preprocess import prepare  # noqa: E402
from tests.sketch import render, strokes  # noqa: E402
from tests.test_browser import CANVAS, CHROMIUM, CHROMIUM_ARGS, PEN, serve_app  # noqa: E402

MODES = {"live": "Live (in your browser)", "server": "Server"}  # pages/draw.py LIVE, SERVER
CANVAS_PX = 300
# Every page gets its timers and rendering at full speed, as each visitor's own foreground tab would.
BROWSER_ARGS = CHROMIUM_ARGS + ["--disable-renderer-backgrounding", "--disable-background-timer-throttling",
                                "--disable-backgrounding-occluded-windows"]
MARK_START, MARK_END = "<!-- load:start -->", "<!-- load:end -->"
TICK = os.sysconf("SC_CLK_TCK")

# The src of the picture captioned "What the model sees" (server mode's answer), or null.
SEEN_SRC = """() => {
  for (const el of document.querySelectorAll('[data-testid=stImage], [data-testid=stFullScreenFrame]')) {
    if (el.textContent.includes('What the model sees')) { const img = el.querySelector('img'); if (img) return img.src; }
  }
  return null;
}"""
READ_LINE = """() => { const el = Array.from(document.querySelectorAll('[data-testid=stCaptionContainer]'))
  .find(e => e.textContent.includes('Read in your browser as')); return el ? el.textContent : null; }"""
IDLE = "() => !document.querySelector('[data-testid=stStatusWidget]')"


# The server process, read from /proc (no psutil needed)

def server_pid() -> int:
    """The streamlit server: the child process serve_app started from this one."""
    me = os.getpid()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == me and b"streamlit" in cmd:
            return int(d.name)
    raise RuntimeError("the streamlit server process was not found among this process's children")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime, all threads


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def libraries(pid: int) -> dict[str, bool]:
    maps = Path(f"/proc/{pid}/maps").read_text()
    return {"onnxruntime": "onnxruntime" in maps, "tensorflow": "libtensorflow" in maps}


def uptime() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def pct(values, q):
    return round(float(np.percentile(values, q))) if len(values) else None


# Drawings

def pick_plans(count: int, strokes_each: int, data: Path) -> list[tuple[str, list]]:
    """Held-out KMNIST test characters that draw in about strokes_each row strokes and that the shipped model
    reads right once drawn (checked offline: strokes rendered, framed by prepare, its model.onnx), so the
    final answers check the app; distinct classes first."""
    run = runs.get_run(runs.DEFAULT_POINTER.read_text().strip())
    predictor = OnnxPredictor(onnx_path(run))
    images = datasets.load_images("kmnist6k", "test", data)
    labels = datasets.load_labels("kmnist6k", "test", data)
    chars = [c.char for c in datasets.load_classes("kmnist6k", data)]
    known = [c.char for c in run.classes]
    chosen, used = [], set()
    for want_new_class in (True, False):
        for i in np.random.default_rng(0).permutation(len(images)):
            plan = strokes(images[i], size=CANVAS_PX)
            if abs(len(plan) - strokes_each) > 2 or (want_new_class and labels[i] in used):
                continue
            drawn = prepare(render(plan, size=CANVAS_PX, width=PEN), run.framing)
            if known[int(predictor(drawn).argmax())] != chars[labels[i]]:
                continue
            if any(i == j for j, _, _ in chosen):
                continue
            chosen.append((i, chars[labels[i]], plan))
            used.add(labels[i])
            if len(chosen) == count:
                return [(c, p) for _, c, p in chosen]
    raise RuntimeError(f"fewer than {count} test characters draw in about {strokes_each} strokes")


# One visitor

async def open_draw(context, url: str, mode: str):
    page = await context.new_page()
    page.set_default_timeout(120_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    await page.goto(url)
    if mode == "server":
        await page.get_by_text(MODES["server"], exact=True).click()
        canvas = page.locator(CANVAS)
    else:
        canvas = page.locator("[data-testid=live-canvas]")
        await page.wait_for_function("() => window.kmnistLive && window.kmnistLive.loads.length > 0")
    await canvas.wait_for(state="visible")
    await page.get_by_text("Draw a character on the canvas").wait_for()
    await page.wait_for_function(IDLE)
    return page, canvas, errors


async def wait_js(page, predicate: str, arg, timeout: float) -> bool:
    try:
        await page.wait_for_function(predicate, arg=arg, timeout=timeout * 1000, polling=25)
        return True
    except Exception:  # Playwright's TimeoutError, or the page went away
        return False


async def draw(page, canvas, mode: str, plan, args, deadline: float) -> dict:
    """Draw the strokes, waiting for each answer; latencies in ms."""
    box = await canvas.bounding_box()
    answers, latency, round_trip, timeouts, drawn = 0, [], [], [], 0
    for k, ((x0, y0), (x1, y1)) in enumerate(plan):
        if time.monotonic() > deadline:
            break
        if mode == "server":
            before = await page.evaluate(SEEN_SRC)
        else:
            before = await page.evaluate("window.kmnistLive.penUp.length")
            line = await page.evaluate(READ_LINE)
        await page.mouse.move(box["x"] + x0, box["y"] + y0)
        await page.mouse.down()
        await page.mouse.move(box["x"] + x1, box["y"] + y1, steps=4)
        await page.mouse.up()
        up = time.perf_counter()
        drawn += 1
        if mode == "server":
            ok = await wait_js(page, f"(prev) => ({SEEN_SRC})() !== prev", before, args.answer_timeout)
            if ok:
                latency.append((time.perf_counter() - up) * 1000)
        else:
            ok = await wait_js(page, "(n) => window.kmnistLive.penUp.length > n", before, args.answer_timeout)
            if ok:
                latency.append(await page.evaluate(f"window.kmnistLive.penUp[{before}]"))
                if await wait_js(page, f"(prev) => {{ const t = ({READ_LINE})(); return t !== null && t !== prev; }}",
                                 line, args.answer_timeout):
                    round_trip.append((time.perf_counter() - up) * 1000)
        answers += ok
        if not ok:  # was the server still busy, or did the drawing never reach it?
            idle = await page.evaluate(IDLE)
            timeouts.append(f"no answer to stroke {k + 1} within {args.answer_timeout:g} s "
                            f"(page {'idle: the stroke was not read' if idle else 'still running'})")
        await asyncio.sleep(args.pause)
    return {"drawn": drawn, "answers": answers, "timeouts": timeouts, "latency": latency, "round_trip": round_trip}


async def final_answer(page, mode: str) -> str:
    if mode == "live":
        return (await page.locator("[data-testid=live-top1]").inner_text()).strip()
    value = page.locator("[data-testid=stMetric]").filter(has_text="Prediction").locator("[data-testid=stMetricValue]")
    return (await value.first.inner_text()).strip() if await value.count() else ""


async def load_run(browser, url: str, pid: int, mode: str, n: int, plans, args) -> dict:
    """One measurement: n visitors open the Draw page in `mode` and draw at once."""
    rss_start = rss_mb(pid)
    contexts = [await browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(n)]
    try:
        opened = await asyncio.gather(*(open_draw(c, url, mode) for c in contexts))
        rss_ready, cpu_ready, load_ready = rss_mb(pid), cpu_seconds(pid), uptime()
        started = time.monotonic()
        deadline = started + args.max_seconds
        per = await asyncio.gather(*(draw(page, canvas, mode, plans[i][1], args, deadline)
                                     for i, (page, canvas, _) in enumerate(opened)))
        wall = time.monotonic() - started
        for page, _, _ in opened:  # let the last reruns finish before the CPU is read
            await wait_js(page, IDLE, None, args.answer_timeout)
        cpu = cpu_seconds(pid) - cpu_ready
        right = 0
        errors = []
        for i, (page, _, page_errors) in enumerate(opened):
            right += await final_answer(page, mode) == plans[i][0]
            exceptions = await page.locator("[data-testid=stException]").count()
            errors += page_errors + [f"{exceptions} Streamlit exception box(es)"] * bool(exceptions)
        errors += [t for s in per for t in s["timeouts"]]
    finally:
        for c in contexts:
            await c.close()
    drawn = sum(s["drawn"] for s in per)
    latency = [v for s in per for v in s["latency"]]
    trip = [v for s in per for v in s["round_trip"]]
    rss_end = rss_mb(pid)
    return {
        "mode": mode, "sessions": n, "strokes": drawn, "answers": sum(s["answers"] for s in per),
        "errors": len(errors), "error_list": errors[:20], "right_at_end": f"{right}/{n}",
        "latency_ms": {"p50": pct(latency, 50), "p95": pct(latency, 95), "n": len(latency)},
        "server_round_trip_ms": {"p50": pct(trip, 50), "p95": pct(trip, 95), "n": len(trip)} if mode == "live" else None,
        "rss_mb": {"start": round(rss_start), "ready": round(rss_ready), "end": round(rss_end),
                   "growth_pct": round(100 * (rss_end - rss_start) / rss_start, 1)},
        "server_cpu_s": round(cpu, 2), "server_cpu_ms_per_stroke": round(1000 * cpu / drawn) if drawn else None,
        "wall_s": round(wall, 1), "libraries": libraries(pid), "load_average": load_ready,
    }


async def warm_up(browser, url: str, mode: str, keras: bool) -> None:
    """One visitor first: loads the model (server mode) and the example images, as the first visitor of the day."""
    context = await browser.new_context()
    try:
        if keras:  # the Evaluation page loads the Keras model: from then on Keras is imported in the server
            page = await context.new_page()
            page.set_default_timeout(180_000)
            await page.goto(url)
            await page.locator("[data-testid=stSidebar]").get_by_text("Active model").wait_for()
            await page.goto(f"{url}/evaluation")
            await page.get_by_text("parameters; optimizer").wait_for()
            await page.close()
        page, canvas, _ = await open_draw(context, url, mode)
        box = await canvas.bounding_box()
        await page.mouse.move(box["x"] + 100, box["y"] + 150)
        await page.mouse.down()
        await page.mouse.move(box["x"] + 200, box["y"] + 150, steps=4)
        await page.mouse.up()
        await page.get_by_text("Training images of these classes").wait_for()
        await page.wait_for_function(IDLE)
    finally:
        await context.close()


async def measure(args, plans, data: Path) -> list[dict]:
    from playwright.async_api import async_playwright
    results = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            for mode in args.modes:
                for n in args.sessions:
                    tmp = Path(tempfile.mkdtemp(prefix="kmnist-load-"))
                    env = {"KMNIST_DATA_DIR": str(data), "KMNIST_RUNS_DIR": str(tmp / "runs"),
                           "TF_CPP_MIN_LOG_LEVEL": "2", **dict(e.split("=", 1) for e in args.env)}
                    with serve_app(env, tmp / "server.log") as url:
                        pid = server_pid()
                        await warm_up(browser, url, mode, args.keras)
                        r = await load_run(browser, url, pid, mode, n, plans, args)
                    r["keras_imported_first"] = args.keras
                    print(json.dumps(r, ensure_ascii=False), flush=True)
                    results.append(r)
        finally:
            await browser.close()
    return results


def table(result: dict) -> str:
    head = ("| mode | sessions | strokes | answers | errors | answer p50 / p95 | server round trip p50 / p95 "
            "| server CPU per stroke | server RSS start → end | model libraries in the server | load average |\n"
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |\n")
    rows = []
    for r in result["runs"]:
        lat, trip, rss = r["latency_ms"], r["server_round_trip_ms"], r["rss_mb"]
        rt = f"{trip['p50']} / {trip['p95']} ms" if trip else "= answer"
        libs = ", ".join(name for name, loaded in r["libraries"].items() if loaded) or "none"
        rows.append(f"| {r['mode']} | {r['sessions']} | {r['strokes']} | {r['answers']} | {r['errors']} | "
                    f"{lat['p50']} / {lat['p95']} ms | {rt} | {r['server_cpu_ms_per_stroke']} ms | "
                    f"{rss['start']} → {rss['end']} MB ({rss['growth_pct']:+}%) | {libs} | {r['load_average']} |")
    return (f"Measured {result['measured']} on {result['machine']}; load average (1, 5, 15 min) "
            f"{result['load_average_start']} at start, {result['load_average_end']} at end; "
            f"{result['settings']['strokes']} strokes per session, {result['settings']['pause']} s pause; "
            f"Keras imported into the server first: {'yes' if result['settings']['keras'] else 'no'}"
            + "".join(f"; server env `{e}`" for e in result["settings"]["server_env"]) + ".\n\n"
            + head + "\n".join(rows) + "\n")


def write_markdown(result: dict, path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    if MARK_START not in text or MARK_END not in text:
        raise SystemExit(f"{path} has no {MARK_START} … {MARK_END} section to fill")
    before, rest = text.split(MARK_START, 1)
    _, after = rest.split(MARK_END, 1)
    path.write_text(before + MARK_START + "\n" + table(result) + MARK_END + after, encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    ap.add_argument("--strokes", type=int, default=20, help="strokes each session draws (one character, about this many)")
    ap.add_argument("--pause", type=float, default=0.3, help="seconds between an answer and the next stroke")
    ap.add_argument("--max-seconds", type=float, default=240, help="drawing stops after this long, per run")
    ap.add_argument("--answer-timeout", type=float, default=30, help="seconds an answer may take before it is an error")
    ap.add_argument("--keras", action="store_true", help="open the Evaluation page first, so Keras is imported")
    ap.add_argument("--env", nargs="*", default=[], metavar="NAME=VALUE",
                    help="extra environment for the server, e.g. STREAMLIT_RUNNER_POST_SCRIPT_GC=true to try a setting")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "load.json"))
    ap.add_argument("--no-markdown", action="store_true", help="do not rewrite the table in BENCHMARKS.md")
    args = ap.parse_args()
    data = datasets.data_dir()
    plans = pick_plans(max(args.sessions), args.strokes, data)
    start_load = uptime()
    results = asyncio.run(measure(args, plans, data))
    result = {
        "measured": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, "
                   f"browsers and server on the same cores",
        "load_average_start": start_load, "load_average_end": uptime(),
        "model": runs.DEFAULT_POINTER.read_text().strip(),
        "settings": {"strokes": args.strokes, "pause": args.pause, "max_seconds": args.max_seconds,
                     "answer_timeout": args.answer_timeout, "keras": args.keras, "server_env": args.env},
        "runs": results,
    }
    Path(args.out).write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if not args.no_markdown:
        write_markdown(result, ROOT / "BENCHMARKS.md")
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
