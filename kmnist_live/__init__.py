"""The live drawing component: the active run's model.onnx answers in the visitor's browser while the pen moves.

A Streamlit Components v2 element written as plain ES modules (live.mjs, framing.mjs; no build step).
The browser loads onnxruntime-web (WASM, one thread) and the model from the app's own static folder
(`static/`, served at /app/static/ with `server.enableStaticServing`), so nothing comes from another
host. On pen up it sends the framed 28x28, the probabilities and the raw canvas PNG to Python.
A run without model.onnx, or a browser without WebAssembly, uses the server path instead.
"""
from __future__ import annotations

import base64
import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import streamlit as st

from kmnist import files, runs, unknown
from kmnist.export import onnx_path

HERE = Path(__file__).resolve().parent
STATIC = files.ROOT / "static"  # Streamlit serves the folder named static/ beside app.py
ORT_DIR, MODELS_DIR = STATIC / "ort", STATIC / "models"
CANVAS_PX = 300  # drawing surface, in CSS and canvas pixels (the server canvas's size)
UNSUPPORTED = "live_unsupported"  # session key: this browser reported no WebAssembly


@dataclass
class LiveDrawing:
    image: np.ndarray  # uint8 (28, 28), framed in the browser exactly like preprocess.prepare
    probs: np.ndarray  # float32 (classes,), the browser's model output
    png: bytes  # the raw canvas drawing as PNG
    seq: int  # counts pen-ups in this component, so a new drawing is told from a rerun
    infer_ms: float  # the browser's framing + inference time for this answer
    score: float | None = None  # the run's "none of these" score from the browser's model, None without one


@lru_cache(maxsize=16)
def _digest(path: str, mtime: float, size: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def publish_model(run: runs.Run) -> str | None:
    """Put the run's model.onnx in static/models/ under a content-hash name; its path below /app/static/.

    The hash makes the name change whenever the model does, so a browser never runs a stale cached model,
    and activating another run swaps the model without a restart. Returns None when the run has no export.
    """
    source = onnx_path(run)
    if source is None:
        return None
    stat = source.stat()
    name = f"{_digest(str(source), stat.st_mtime, stat.st_size)}.onnx"
    target = MODELS_DIR / name
    if not target.is_file():
        MODELS_DIR.mkdir(parents=True, exist_ok=True)
        with files.atomic_open(target, "wb") as out, source.open("rb") as f:
            shutil.copyfileobj(f, out)
    return f"models/{name}"


def available(run: runs.Run) -> bool:
    """Whether the live path can serve this run here: an exported model, the vendored runtime, a browser with WASM."""
    return (onnx_path(run) is not None and (ORT_DIR / "ort.wasm.min.mjs").is_file()
            and not st.session_state.get(UNSUPPORTED, False))


def _static_base() -> str:
    base = (st.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}/app/static/" if base else "/app/static/"


def _read(name: str) -> str:
    return (HERE / name).read_text(encoding="utf-8")


# framing.mjs first: live.mjs calls its prepareCanvas. One inline module, no build step.
_CANVAS = st.components.v2.component("kmnist_live.canvas", html=_read("live.html"), css=_read("live.css"),
                                     js=_read("framing.mjs") + "\n" + _read("live.mjs"))


def _decode(value: dict | None) -> LiveDrawing | None:
    if not value:
        return None
    image = np.frombuffer(base64.b64decode(value["image"]), np.uint8)
    if image.size != 28 * 28:
        return None
    png = value.get("png") or ""
    return LiveDrawing(image=image.reshape(28, 28).copy(), probs=np.asarray(value["probs"], np.float32),
                       png=base64.b64decode(png.partition(",")[2]) if png.startswith("data:") else b"",
                       seq=int(value.get("seq", 0)), infer_ms=float(value.get("ms", 0.0)),
                       score=None if value.get("score") is None else float(value["score"]))


def live_canvas(run: runs.Run, key: str = "live", background: bytes | None = None,
                on_change: Callable[[], None] | None = None) -> LiveDrawing | None:
    """Mount the live canvas for the run; the last drawing the pen lifted from, or None (empty or cleared).

    `background`, PNG bytes, shows faintly under the ink (a form to trace) on a layer of its own: the model
    never reads it. `on_change` runs when the pen lifts, as a widget's on_change does.
    """
    model = publish_model(run)
    classes = [{"char": c.char, "romaji": c.romaji, "kanji": c.kanji} for c in run.classes]
    picture = f"data:image/png;base64,{base64.b64encode(background).decode()}" if background else None
    rule = unknown.load(run)  # its threshold goes to the browser, which computes the score in the model
    result = _CANVAS(
        key=key, data={"model": model, "static": _static_base(), "classes": classes,
                       "framing": run.framing.to_json(), "size": CANVAS_PX, "run": run.id, "background": picture,
                       "unknown": rule.threshold if rule is not None else None},
        default={"drawing": None, "unsupported": False}, on_drawing_change=on_change or (lambda: None),
        on_unsupported_change=lambda: None)
    if result.unsupported and not st.session_state.get(UNSUPPORTED):
        st.session_state[UNSUPPORTED] = True  # this browser cannot run it: the page falls back to the server path
        st.rerun()
    return _decode(result.drawing)
