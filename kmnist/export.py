"""A run's model exported for inference outside Keras: `model.onnx` beside `model.keras`, checked against Keras.

The ONNX file is what the browser runs (onnxruntime-web on the Draw page) and what the server's
single-image predictor prefers: onnxruntime answers one image in well under a millisecond and is
untouched by the Keras session reset Streamlit performs after every script run. The export is
verified before it is placed: the ONNX outputs on a seeded batch must match Keras within TOLERANCE,
and `export.json` records the difference, the file's hash and size (or why the export failed). A run with a
"none of these" rule (kmnist.unknown) gets the rule's score as a second output, so the browser applies it too.
"""
from __future__ import annotations

import hashlib
import time
import traceback
from pathlib import Path

import numpy as np

from kmnist import KmnistError, files, runs, unknown
from kmnist.preprocess import SIZE, to_input

ONNX_FILE, EXPORT_FILE = "model.onnx", "export.json"
OPSET = 17  # ONNX opset: supported by onnxruntime 1.32 and onnxruntime-web 1.30
INPUT_NAME = "image"  # the graph input: float32 (N, 28, 28, 1), 0..255 like to_input
CHECK_IMAGES = 64  # images in the verification batch
TOLERANCE = 1e-4  # largest probability difference from Keras accepted
SCORE_TOLERANCE = 1e-4  # largest difference of the "none of these" score from Keras, relative to its size


class ExportMismatchError(KmnistError, RuntimeError):
    """The ONNX graph does not reproduce the Keras model's outputs."""


def check_batch(n: int = CHECK_IMAGES, seed: int = 0) -> np.ndarray:
    """Seeded uint8 images (n, 28, 28) that exercise the whole graph: blank, sparse ink, dense noise."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (n, SIZE, SIZE))
    keep = rng.random((n, SIZE, SIZE)) < np.linspace(0.0, 1.0, n)[:, None, None]  # image 0 blank, the last full
    return (noise * keep).astype(np.uint8)


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def session(source: Path | bytes):
    """An onnxruntime session on one thread: one image at a time gains nothing from more on 2 shared cores."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    return ort.InferenceSession(source if isinstance(source, bytes) else str(source), opts,
                                providers=["CPUExecutionProvider"])


def export_model(model, run_dir: Path) -> dict:
    """Convert a Keras model into run_dir/model.onnx, verified first, then placed atomically; returns export.json."""
    import tensorflow as tf
    import tf2onnx

    started = time.time()
    rule = unknown.load(run_dir)
    graph = unknown.with_score(model, rule) if rule is not None else model
    spec = (tf.TensorSpec((None, SIZE, SIZE, 1), tf.float32, name=INPUT_NAME),)
    proto, _ = tf2onnx.convert.from_keras(graph, input_signature=spec, opset=OPSET)
    data = proto.SerializeToString()
    x = to_input(check_batch())
    sess = session(data)
    got = sess.run(None, {INPUT_NAME: x})
    want = graph(x, training=False)
    want = [np.asarray(w) for w in (want if isinstance(want, (list, tuple)) else [want])]
    diff = float(np.abs(got[0] - want[0]).max())
    same_top1 = float((got[0].argmax(1) == want[0].argmax(1)).mean())
    if not diff <= TOLERANCE:  # also catches NaN
        raise ExportMismatchError(f"ONNX outputs differ from Keras by up to {diff:.3g} (tolerance {TOLERANCE})")
    score_diff = None
    if rule is not None:
        score_diff = float((np.abs(got[1] - want[1]) / np.maximum(np.abs(want[1]), 1.0)).max())
        if not score_diff <= SCORE_TOLERANCE:
            raise ExportMismatchError(f"the ONNX 'none of these' score differs from Keras by up to {score_diff:.3g} "
                                      f"of its size (tolerance {SCORE_TOLERANCE})")
    path = Path(run_dir) / ONNX_FILE
    with files.atomic_open(path, "wb") as f:
        f.write(data)
    info = {"state": "exported", "file": ONNX_FILE, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "opset": OPSET, "input": INPUT_NAME, "output": sess.get_outputs()[0].name,
            "unknown_output": sess.get_outputs()[1].name if rule is not None else None,
            "unknown_score_rel_diff": score_diff,
            "check_images": len(x), "max_abs_diff": diff, "top1_agreement": same_top1, "tolerance": TOLERANCE,
            "seconds": round(time.time() - started, 3), "tf2onnx": tf2onnx.__version__,
            "exported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    files.write_json(Path(run_dir) / EXPORT_FILE, info)
    return info


def export_run(run: runs.Run) -> dict:
    """Export a finished run's saved model (for runs trained before exports existed, and the shipped ones)."""
    return export_model(run.load_model(), run.path)


def export_or_record(model, run_dir: Path) -> dict:
    """Export, but never fail the caller: a failure is recorded in export.json and the run keeps its Keras model."""
    try:
        return export_model(model, run_dir)
    except Exception as e:  # noqa: BLE001 - any converter failure must leave training's result intact
        info = {"state": "failed", "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
        files.write_json(Path(run_dir) / EXPORT_FILE, info)
        return info


def onnx_path(run: runs.Run) -> Path | None:
    """The run's exported model, or None when it has none (the server path and Keras then serve it)."""
    path = run.path / ONNX_FILE
    return path if path.is_file() else None
