"""Load on the Draw page: N Chromium sessions drawing at once against one `streamlit run app.py`.

    python benchmarks/load.py --sessions 1 4 8 [--strokes 10] [--server-option runner.postScriptGC=false]

Starts the app on a free loopback port (an empty runs dir, so the shipped default model answers), warms it
up with one drawing, then for each session count opens that many tabs in one Debian Chromium; every tab
draws `--strokes` strokes, waiting after each for the page to show the new drawing's answer. Measured per
level: answers, errors (no answer within --answer-timeout, or an exception shown on the page), answer
latency p50/p95 from pen-up to the new answer on screen (it includes the canvas's 200 ms send delay), and
the server's resident memory before and after. Every level is bounded by --max-seconds; requests to any
host but the app's are blocked, so nothing leaves the machine. Results go to JSON and, with --markdown,
into the load section of BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
CANVAS = "[data-testid=stBidiComponentIsolated] canvas.upper-canvas"  # the drawing layer (tests/test_browser.py)
CANVAS_PX = 300  # pages/draw.py CANVAS_PX
SERVER_MODE = "Server"  # pages/draw.py SERVER: the Draw page's server-side recognition
SEEN = "What the model sees"  # caption of the framed 28x28 input, shown with every answer
MARK_BEGIN, MARK_END = "<!-- load:begin -->", "<!-- load:end -->"

# The src of the "what the model sees" image: it changes with every answer, as each stroke adds ink.
SEEN_SRC = """() => {
  for (const el of document.querySelectorAll('[data-testid=stImage], [data-testid=stImageContainer]')) {
    const box = el.closest('[data-testid=stElementContainer]') || el.parentElement;
    if (box && box.innerText.includes('%s')) { const img = el.querySelector('img'); if (img) return img.src; }
  }
  return null;
}""" % SEEN
EXCEPTION = "[data-testid=stException]"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(port: int, options: list[str], runs_dir: Path, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    for opt in options:
        key, _, value = opt.partition("=")
        cmd += [f"--{key}", value]
    env = os.environ | {"KMNIST_RUNS_DIR": str(runs_dir), "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit(f"streamlit did not answer within 120 s:\n{log.read_text()[-3000:]}")


def stroke_plan(n: int, seed: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """n seeded pen strokes inside the canvas, each a straight line of 60 to 200 pixels."""
    rng = np.random.default_rng(seed)
    plan = []
    for _ in range(n):
        x0, y0 = rng.integers(40, CANVAS_PX - 40, size=2)
        angle, length = rng.uniform(0, np.pi), rng.uniform(60, 200)
        x1 = int(np.clip(x0 + length * np.cos(angle), 20, CANVAS_PX - 20))
        y1 = int(np.clip(y0 + length * np.sin(angle), 20, CANVAS_PX - 20))
        plan.append(((int(x0), int(y0)), (x1, y1)))
    return plan


async def loopback_only(page, url: str) -> None:
    """Abort every request to another host: the benchmark (and the app) must not need the network."""
    async def route(r):
        await (r.continue_() if r.request.url.startswith(url) or r.request.url.startswith("data:") else r.abort())
    await page.route("**/*", route)


async def open_draw(context, url: str):
    page = await context.new_page()
    page.set_default_timeout(120_000)
    await loopback_only(page, url)
    await page.goto(url)
    server_mode = page.get_by_text(SERVER_MODE, exact=True)
    await page.get_by_text("Recognise").first.wait_for()
    if await server_mode.count():  # the load under test is the server's: every pen-up reruns the page there
        await server_mode.click()
    await page.locator(CANVAS).wait_for(state="visible")
    await page.get_by_text("Draw a character on the canvas").wait_for()
    return page


async def draw_session(context, url: str, strokes: int, seed: int, answer_timeout: float, deadline: float) -> dict:
    """One user: draw strokes one after another, each time waiting for the answer; latencies in seconds."""
    latencies, errors = [], []
    page = await open_draw(context, url)
    box = await page.locator(CANVAS).bounding_box()
    for (x0, y0), (x1, y1) in stroke_plan(strokes, seed):
        if time.monotonic() > deadline:
            errors.append("time limit reached")
            break
        before = await page.evaluate(SEEN_SRC)
        await page.mouse.move(box["x"] + x0, box["y"] + y0)
        await page.mouse.down()
        await page.mouse.move(box["x"] + x1, box["y"] + y1, steps=4)
        await page.mouse.up()
        lifted = time.monotonic()
        try:
            await page.wait_for_function(f"(before) => {{ const s = ({SEEN_SRC})(); return s && s !== before; }}",
                                         arg=before, timeout=answer_timeout * 1000, polling=50)
            latencies.append(time.monotonic() - lifted)
        except Exception as e:  # noqa: BLE001 - a Playwright timeout: no answer for this stroke
            errors.append(f"no answer within {answer_timeout:.0f} s ({type(e).__name__})")
        if await page.locator(EXCEPTION).count():
            errors.append("an exception is shown on the page")
            break
    await page.close()
    return {"latencies": latencies, "errors": errors}


async def run_level(browser, url: str, sessions: int, strokes: int, answer_timeout: float,
                    max_seconds: float) -> dict:
    deadline = time.monotonic() + max_seconds
    contexts = [await browser.new_context(viewport={"width": 1400, "height": 1100}) for _ in range(sessions)]
    started = time.monotonic()
    try:
        results = await asyncio.gather(*(draw_session(c, url, strokes, seed, answer_timeout, deadline)
                                         for seed, c in enumerate(contexts)), return_exceptions=True)
    finally:
        for c in contexts:
            await c.close()
    latencies, errors = [], []
    for r in results:
        if isinstance(r, BaseException):
            errors.append(f"session failed: {type(r).__name__}: {str(r)[:200]}")
        else:
            latencies += r["latencies"]
            errors += r["errors"]
    lat = np.array(latencies) if latencies else np.array([np.nan])
    return {"sessions": sessions, "strokes": sessions * strokes, "answers": len(latencies), "errors": len(errors),
            "error_kinds": sorted(set(errors)), "p50_s": round(float(np.percentile(lat, 50)), 3),
            "p95_s": round(float(np.percentile(lat, 95)), 3), "max_s": round(float(np.max(lat)), 3),
            "seconds": round(time.monotonic() - started, 1)}


async def bench(args) -> dict:
    from playwright.async_api import async_playwright
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = Path(tempfile.gettempdir()) / f"kmnist-load-{port}.log"
    with tempfile.TemporaryDirectory(prefix="kmnist-load-runs-") as runs_dir:
        server = start_server(port, args.server_option, Path(runs_dir), log)
        try:
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                warm = await run_level(browser, url, 1, 2, args.answer_timeout * 4, args.max_seconds)
                if not warm["answers"]:
                    raise SystemExit(f"warm-up got no answer: {warm}; server log in {log}")
                levels = []
                for n in args.sessions:
                    rss_before = rss_mb(server.pid)
                    level = await run_level(browser, url, n, args.strokes, args.answer_timeout, args.max_seconds)
                    level |= {"rss_before_mb": round(rss_before), "rss_after_mb": round(rss_mb(server.pid))}
                    level["rss_growth"] = round(level["rss_after_mb"] / level["rss_before_mb"] - 1, 3)
                    print(json.dumps(level), file=sys.stderr, flush=True)
                    levels.append(level)
                await browser.close()
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
    return {"server_options": args.server_option, "strokes_per_session": args.strokes,
            "cpus": os.cpu_count(), "load_before": round(os.getloadavg()[0], 1), "machine": platform.machine(),
            "date": time.strftime("%Y-%m-%d"), "levels": levels}


def markdown(result: dict) -> str:
    opts = ", ".join(f"`{o}`" for o in result["server_options"]) or "none"
    lines = [f"Server options: {opts}; {result['strokes_per_session']} strokes per session; {result['cpus']} CPUs "
             f"shared with the browsers (load average {result['load_before']} at the start); {result['date']}.", "",
             "| sessions | answers | errors | p50 | p95 | max | server RSS before → after |",
             "|---:|---:|---:|---:|---:|---:|---|"]
    for lv in result["levels"]:
        lines.append(f"| {lv['sessions']} | {lv['answers']}/{lv['strokes']} | {lv['errors']} | {lv['p50_s']:.2f} s "
                     f"| {lv['p95_s']:.2f} s | {lv['max_s']:.2f} s | {lv['rss_before_mb']} → {lv['rss_after_mb']} MB "
                     f"({lv['rss_growth']:+.1%}) |")
    return "\n".join(lines)


def write_markdown(path: Path, table: str, label: str) -> None:
    """Put the table under `label` between the load markers of BENCHMARKS.md, keeping other labels' tables."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    block = f"<!-- {label} -->\n{table}\n<!-- /{label} -->"
    if MARK_BEGIN not in text:
        text = text.rstrip("\n") + f"\n\n## Load: sessions drawing at once (`python benchmarks/load.py`)\n\n" \
                                   f"{MARK_BEGIN}\n{MARK_END}\n"
    head, rest = text.split(MARK_BEGIN, 1)
    body, tail = rest.split(MARK_END, 1)
    start, end = f"<!-- {label} -->", f"<!-- /{label} -->"
    if start in body:
        before, after = body.split(start, 1)
        body = before + block + after.split(end, 1)[1]
    else:
        body = body.rstrip("\n") + "\n" + block + "\n"
    path.write_text(head + MARK_BEGIN + body + MARK_END + tail, encoding="utf-8")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sessions", type=int, nargs="+", default=[1, 4, 8], help="session counts, run in turn")
    p.add_argument("--strokes", type=int, default=10, help="strokes each session draws")
    p.add_argument("--answer-timeout", type=float, default=30.0, help="seconds a stroke may wait for its answer")
    p.add_argument("--max-seconds", type=float, default=240.0, help="time limit of each session count")
    p.add_argument("--server-option", action="append", default=[],
                   help="a streamlit config option for the server, e.g. runner.postScriptGC=false (repeatable)")
    p.add_argument("--out", default="benchmarks/load.json", help="results JSON (default: %(default)s)")
    p.add_argument("--markdown", help="also write a table into this markdown file (e.g. BENCHMARKS.md)")
    p.add_argument("--label", default="default", help="name of this configuration's table in the markdown")
    args = p.parse_args()
    result = asyncio.run(bench(args))
    out = ROOT / args.out
    runs = json.loads(out.read_text()) if out.exists() else {}
    runs[args.label] = result
    out.write_text(json.dumps(runs, indent=1) + "\n", encoding="utf-8")
    table = markdown(result)
    print(table)
    if args.markdown:
        write_markdown(ROOT / args.markdown, f"**{args.label}**\n\n{table}", args.label)


if __name__ == "__main__":
    main()
