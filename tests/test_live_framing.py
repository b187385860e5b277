"""The browser's framing (kmnist_live/framing.mjs, run in Node) agrees with kmnist.preprocess.prepare.

Generated drawings: random pen strokes rendered like the canvas renders them (black, round caps, on
white, 300x300 RGBA), at several stroke widths so both the dilation and the erosion branches run.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from kmnist.preprocess import DEFAULT_FRAMING, EmptyImageError, Framing, prepare
from tests.sketch import render

ROOT = Path(__file__).resolve().parent.parent
FRAMING_JS = ROOT / "kmnist_live" / "framing.mjs"
CANVAS = 300
NODE_SCRIPT = """
import { readFileSync, writeFileSync } from "node:fs";
import { prepareCanvas } from %s;
const [, , pixels, meta, out] = process.argv;
const { n, size, framing } = JSON.parse(readFileSync(meta, "utf8"));
const all = new Uint8Array(readFileSync(pixels));
const result = new Uint8Array(n * 784).fill(0);
const empty = [];
for (let i = 0; i < n; i++) {
  const framed = prepareCanvas(all.subarray(i * size * size * 4, (i + 1) * size * size * 4), size, size, framing);
  if (framed === null) empty.push(i); else result.set(framed, i * 784);
}
writeFileSync(out, result);
console.log(JSON.stringify({ empty }));
"""


def random_drawing(rng: np.random.Generator) -> np.ndarray:
    """A few random pen strokes somewhere on the canvas, at a random pen width."""
    strokes = []
    cx, cy, spread = rng.uniform(80, 220), rng.uniform(80, 220), rng.uniform(20, 120)
    for _ in range(rng.integers(1, 6)):
        points = np.cumsum(rng.normal(0, spread / 4, (rng.integers(2, 12), 2)), axis=0) + (cx, cy)
        points = np.clip(points, 5, CANVAS - 5)
        strokes += [(tuple(a), tuple(b)) for a, b in pairwise(points)]
    return render(strokes, size=CANVAS, width=int(rng.choice([3, 8, 16, 30])))


def framed_in_node(drawings: list[np.ndarray], framing: Framing, tmp_path: Path) -> tuple[np.ndarray, list[int]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed (apt install nodejs)")
    (tmp_path / "pixels.bin").write_bytes(np.stack(drawings).astype(np.uint8).tobytes())
    (tmp_path / "meta.json").write_text(json.dumps({"n": len(drawings), "size": CANVAS, "framing": framing.to_json()}))
    script = tmp_path / "run.mjs"
    script.write_text(NODE_SCRIPT % json.dumps(FRAMING_JS.as_uri()))
    done = subprocess.run([node, str(script), str(tmp_path / "pixels.bin"), str(tmp_path / "meta.json"),
                           str(tmp_path / "out.bin")], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = np.frombuffer((tmp_path / "out.bin").read_bytes(), np.uint8).reshape(-1, 28, 28)
    return out, json.loads(done.stdout)["empty"]


@pytest.mark.parametrize("framing", [DEFAULT_FRAMING, Framing(box=24.0, com_y=14.2, com_x=13.1, stroke=1.6)],
                         ids=["default", "thin-small"])
def test_js_framing_agrees_with_prepare(framing, tmp_path):
    rng = np.random.default_rng(0)
    drawings = [random_drawing(rng) for _ in range(40)]
    js, empty = framed_in_node(drawings, framing, tmp_path)
    assert not empty, f"JS found no ink in drawings {empty}"
    py = np.stack([prepare(d, framing) for d in drawings])
    diff = np.abs(js.astype(int) - py.astype(int))
    exact = (diff.reshape(len(py), -1).max(axis=1) == 0).mean()
    assert diff.mean() < 0.01, f"mean pixel difference {diff.mean():.3f} grey levels"
    assert diff.max() <= 32, f"largest pixel difference {diff.max()} grey levels"
    assert exact >= 0.95, f"only {exact:.0%} of drawings framed identically"


def test_js_framing_finds_an_empty_canvas_empty(tmp_path):
    blank = np.full((CANVAS, CANVAS, 4), 255, np.uint8)
    dot = blank.copy()
    dot[150, 150, :3] = 0  # one dark pixel: under the 3-pixel minimum of ink
    _, empty = framed_in_node([blank, dot], DEFAULT_FRAMING, tmp_path)
    assert empty == [0, 1]
    for image in (blank, dot):
        with pytest.raises(EmptyImageError):
            prepare(image)
