"""The live drawing component: the active run's model.onnx answers in the visitor's browser while the pen moves.

A Streamlit Components v2 element written as plain ES modules (live.mjs, framing.mjs; no build step).
The browser loads onnxruntime-web (WASM, one thread) and the run's browser model from the app itself,
through routes of its own (`routes()`, mounted by app.py's `st.App`): the model at a content-hashed URL
read straight from the run directory, the runtime at a versioned one, both sent `immutable` so a return
visit does not even revalidate, and nothing is ever written into the checkout. On pen up it sends the
framed 28x28, the probabilities and the raw canvas PNG to Python; until the browser model is ready it
sends the framed image alone and the server's model answers it. A run without model.onnx, or a browser
without WebAssembly, uses the server path instead.
"""
from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import streamlit as st

from kmnist import runs, unknown
from kmnist.export import browser_path, onnx_path

HERE = Path(__file__).resolve().parent
ORT_DIR = HERE / "ort"  # onnxruntime-web, vendored (VERSION says which; scripts/refresh_ort.sh)
ROUTE = "kmnist"  # the app's own routes live under /<server.baseUrlPath>/kmnist/
RUNTIME_TYPES = {"ort.wasm.min.mjs": "text/javascript", "ort-wasm-simd-threaded.mjs": "text/javascript",
                 "ort-wasm-simd-threaded.wasm": "application/wasm"}  # the runtime files the browser asks for
IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}  # a URL that names its content never changes
UNSUPPORTED = "live_unsupported"  # session key: this browser reported no WebAssembly


@dataclass
class LiveDrawing:
    image: np.ndarray  # uint8 (28, 28), framed in the browser exactly like preprocess.prepare
    probs: np.ndarray | None  # float32 (classes,), the browser's model output; None: its model was not ready
    png: bytes  # the raw canvas drawing as PNG
    score: float | None = None  # the run's "none of these" score from the browser's model, None without one


@lru_cache(maxsize=64)
def _digest(path: str, mtime: float, size: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def digest(path: Path) -> str:
    """The file's content hash (16 hex digits), computed once per file version."""
    stat = path.stat()
    return _digest(str(path), stat.st_mtime, stat.st_size)


def _base() -> str:
    base = (st.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}/{ROUTE}/" if base else f"/{ROUTE}/"


def runtime_tag() -> str:
    """Names this runtime version in its URLs: a new vendored runtime gets new URLs, so caches never mix them."""
    return digest(ORT_DIR / "VERSION")[:10]


def model_url(run: runs.Run) -> str | None:
    """The URL of the run's browser model, named by its content hash; None when the run has no export.

    The hash changes whenever the model does, so a browser never runs a stale cached model, and activating
    another run swaps the model without a restart. Nothing is copied: `_model_file` reads the run directory.
    """
    source = browser_path(run)
    return None if source is None else f"{_base()}model/{digest(source)}.onnx"


def _model_file(name: str) -> Path | None:
    """The browser model of any run whose content hash the name carries (runs are few: a scan is cheap)."""
    for run in runs.list_runs():
        source = browser_path(run)
        if source is not None and name == f"{digest(source)}.onnx":
            return source
    return None


async def _serve_model(request):
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import FileResponse, PlainTextResponse
    path = await run_in_threadpool(_model_file, request.path_params["name"])
    if path is None:
        return PlainTextResponse("no such model", status_code=404)
    return FileResponse(path, media_type="application/octet-stream", headers=IMMUTABLE)


async def _serve_runtime(request):
    from starlette.responses import FileResponse, PlainTextResponse
    name = request.path_params["name"]
    if request.path_params["tag"] != runtime_tag() or name not in RUNTIME_TYPES:
        return PlainTextResponse("not found", status_code=404)
    return FileResponse(ORT_DIR / name, media_type=RUNTIME_TYPES[name], headers=IMMUTABLE)


def routes() -> list:
    """The live canvas's HTTP routes for `st.App` (app.py): browser models by hash, the runtime by version.

    Streamlit's own static serving (`static/` beside app.py) can neither read the runs directory nor set
    Cache-Control, and writing a copy there needs a writable checkout; these routes need neither. The base
    URL path is read when the app starts.
    """
    from starlette.routing import Route
    return [Route(f"{_base()}model/{{name}}", _serve_model, methods=["GET"]),
            Route(f"{_base()}ort/{{tag}}/{{name}}", _serve_runtime, methods=["GET"])]


def available(run: runs.Run) -> bool:
    """Whether the live path can serve this run here: an exported model, the vendored runtime, a browser with WASM."""
    return (onnx_path(run) is not None and (ORT_DIR / "ort.wasm.min.mjs").is_file()
            and not st.session_state.get(UNSUPPORTED, False))


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
    probs = value.get("probs")
    png = value.get("png") or ""
    return LiveDrawing(image=image.reshape(28, 28).copy(),
                       probs=None if probs is None else np.asarray(probs, np.float32),
                       png=base64.b64decode(png.partition(",")[2]) if png.startswith("data:") else b"",
                       score=None if value.get("score") is None else float(value["score"]))


def _served_key(key: str) -> str:
    return f"{key}.server_answer"  # session key: the server's answer to a drawing the browser could not read yet


def _on_drawing(key: str, answer: Callable[[np.ndarray], tuple[np.ndarray, float | None]] | None,
                on_change: Callable[[], None] | None) -> Callable[[], None]:
    """The pen-up callback: a drawing sent without probabilities (the browser model still loading) is read
    here, before the rerun, so the same run hands the answer back to the canvas."""
    def changed() -> None:
        state = st.session_state.get(key)
        value = state.get("drawing") if state else None
        drawing = _decode(value) if answer is not None and value and value.get("probs") is None else None
        if drawing is not None:
            probs, score = answer(drawing.image)
            st.session_state[_served_key(key)] = {"image": value["image"], "probs": np.asarray(probs).tolist(),
                                                  "score": None if score is None else float(score)}
        if on_change is not None:
            on_change()
    return changed


def live_canvas(run: runs.Run, key: str = "live", background: bytes | None = None,
                on_change: Callable[[], None] | None = None,
                answer: Callable[[np.ndarray], tuple[np.ndarray, float | None]] | None = None) -> LiveDrawing | None:
    """Mount the live canvas for the run; the last drawing the pen lifted from, or None (empty or cleared).

    `background`, PNG bytes, shows faintly under the ink (a form to trace) on a layer of its own: the model
    never reads it. `on_change` runs when the pen lifts, as a widget's on_change does. `answer` (the server
    predictor's `read`: a framed 28x28 uint8 -> probabilities and "none of these" score) reads the drawings
    made before the browser's model is ready, so the first answer does not wait for the download.
    """
    classes = [{"char": c.char, "romaji": c.romaji, "kanji": c.kanji} for c in run.classes]
    picture = f"data:image/png;base64,{base64.b64encode(background).decode()}" if background else None
    rule = unknown.load(run)  # its threshold goes to the browser, which computes the score in the model
    result = _CANVAS(
        key=key, data={"model": model_url(run), "ort": f"{_base()}ort/{runtime_tag()}/", "classes": classes,
                       "framing": run.framing.to_json(), "run": run.id, "background": picture,
                       "answer": st.session_state.get(_served_key(key)),
                       "unknown": rule.threshold if rule is not None else None},
        default={"drawing": None, "unsupported": False}, on_drawing_change=_on_drawing(key, answer, on_change),
        on_unsupported_change=lambda: None)
    if result.unsupported and not st.session_state.get(UNSUPPORTED):
        st.session_state[UNSUPPORTED] = True  # this browser cannot run it: the page falls back to the server path
        st.rerun()
    return _decode(result.drawing)
