"""A run's model exported for inference outside Keras: `model.onnx` beside `model.keras`, checked against Keras.

The ONNX file is what the browser runs (onnxruntime-web on the Draw page) and what the server's
single-image predictor prefers: onnxruntime answers one image in well under a millisecond and is
untouched by the Keras session reset Streamlit performs after every script run. The export is
verified before it is placed: the ONNX outputs on a seeded batch must match Keras within TOLERANCE,
and `export.json` records the difference, the file's hash and size (or why the export failed).

The browser gets a smaller copy, `model.browser.onnx`: static int8 QDQ calibrated on training images (a
quarter of the bytes), else float16 weights (half). A copy is placed only when it answers like the float32
model on the test set (accuracy within MAX_ACCURACY_DROP, top-1 agreement at least MIN_AGREEMENT), and
`export.json` says which under "browser"; otherwise the browser gets model.onnx. The server always runs
the float32 model.

A run with a "none of these" rule (kmnist.unknown) gets the rule's score as a second output, so the browser
applies it too.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kmnist import KmnistError, datasets, files, runs, unknown
from kmnist.preprocess import SIZE, to_input

ONNX_FILE, EXPORT_FILE, BROWSER_FILE = "model.onnx", "export.json", "model.browser.onnx"
OPSET = 17  # ONNX opset: supported by onnxruntime 1.32 and onnxruntime-web 1.30
INPUT_NAME = "image"  # the graph input: float32 (N, 28, 28, 1), 0..255 like to_input
CHECK_IMAGES = 64  # images in the verification batch
TOLERANCE = 1e-4  # largest probability difference from Keras accepted
CALIBRATION_IMAGES = 1024  # training images (seeded pick) that set the int8 activation ranges
CHECK_TEST_IMAGES = 10_000  # test images the browser's copy is scored on against float32 (all of a smaller set)
MAX_ACCURACY_DROP = 0.001  # the browser's copy may lose at most 0.1 point of test accuracy...
MIN_AGREEMENT = 0.995  # ...and must give float32's top-1 on at least 99.5% of the test images
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


def export_model(model, run_dir: Path, images: Images | None = None) -> dict:
    """Convert a Keras model into run_dir/model.onnx, verified first, then placed atomically; returns export.json.

    Then the browser's smaller copy (`browser_copy`), checked with `images`, else the run's dataset on disk."""
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
    info["browser"] = browser_copy(Path(run_dir), images)
    files.write_json(Path(run_dir) / EXPORT_FILE, info)
    return info


@dataclass
class Images:
    """What the browser's copy is made and judged with: training images to calibrate, a labelled test set."""
    train: np.ndarray  # uint8 (N, 28, 28) training images; a seeded pick calibrates the activation ranges
    test: np.ndarray  # uint8 (M, 28, 28) test images the copy is scored on against float32 (CHECK_TEST_IMAGES)
    labels: np.ndarray  # (M,) their labels
    dataset: str  # the dataset they come from, as export.json names it

    @classmethod
    def of_run(cls, run_dir: Path) -> Images:
        """The run's dataset as found on disk; DataMissingError when it is not there."""
        name = runs.Run(run_dir.name, run_dir).config.dataset
        return cls(datasets.load_images(name, "train"), datasets.load_images(name, "test"),
                   datasets.load_labels(name, "test"), name)


def browser_copy(run_dir: Path, images: Images | None = None) -> dict:
    """Make the browser's smaller copy beside model.onnx, or record why the browser gets model.onnx itself.

    The first of int8 QDQ (a quarter of the bytes, int8 arithmetic) and float16 weights (half the bytes,
    float32 arithmetic) that answers like model.onnx on the test set is placed; export.json says which,
    with its numbers and those of a copy turned down."""
    (run_dir / BROWSER_FILE).unlink(missing_ok=True)  # a copy of an earlier export never outlives it
    try:
        images = images or Images.of_run(run_dir)
        pick = np.random.default_rng(0).permutation(len(images.test))[:CHECK_TEST_IMAGES]
        test, labels = images.test[pick], images.labels[pick]
        rule = unknown.load(run_dir)
        want, want_score = _outputs(run_dir / ONNX_FILE, test)
        want = want.argmax(1)
        turned_down = []
        for make in (int8_qdq, float16_weights):
            started = time.time()
            data, method = make(run_dir / ONNX_FILE, images.train)
            got, got_score = _outputs(data, test)
            got = got.argmax(1)
            info = {"state": "placed", "file": BROWSER_FILE, "method": method, "bytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(), "dataset": images.dataset, "test_images": len(test),
                    "accuracy_float32": float((want == labels).mean()), "accuracy": float((got == labels).mean()),
                    "top1_agreement": float((got == want).mean()), "max_accuracy_drop": MAX_ACCURACY_DROP,
                    "min_agreement": MIN_AGREEMENT, "seconds": round(time.time() - started, 3),
                    # the browser's "none of these" must decide as the server's does (None: the run has no rule)
                    "unknown_agreement": float((rule.flags(got_score) == rule.flags(want_score)).mean())
                    if rule is not None and got_score is not None else None}
            if (info["accuracy_float32"] - info["accuracy"] <= MAX_ACCURACY_DROP
                    and info["top1_agreement"] >= MIN_AGREEMENT
                    and (info["unknown_agreement"] is None or info["unknown_agreement"] >= MIN_AGREEMENT)):
                with files.atomic_open(run_dir / BROWSER_FILE, "wb") as f:
                    f.write(data)
                return {**info, "turned_down": turned_down}
            turned_down.append({k: info[k] for k in ("method", "bytes", "accuracy", "top1_agreement",
                                                     "unknown_agreement")})
        return {"state": "float32", "why": "no smaller copy answers like model.onnx", "dataset": images.dataset,
                "test_images": len(test), "turned_down": turned_down}
    except (datasets.DataMissingError, runs.RunError) as e:  # no data here, or no config naming it
        return {"state": "skipped", "why": f"no images to calibrate and check a smaller copy with: {e}"}
    except Exception as e:  # noqa: BLE001 - a quantizer failure leaves the checked float32 export serving the browser
        return {"state": "failed", "error": f"{type(e).__name__}: {e}"}


def _outputs(source: Path | bytes, images: np.ndarray, batch: int = 1000) -> tuple[np.ndarray, np.ndarray | None]:
    """A model's probabilities and its "none of these" scores (None without that output) for many images."""
    sess = session(source)
    runs_ = [sess.run(None, {INPUT_NAME: to_input(images[i:i + batch])}) for i in range(0, len(images), batch)]
    probs = np.concatenate([r[0] for r in runs_])
    return probs, (np.concatenate([np.ravel(r[1]) for r in runs_]) if len(runs_[0]) > 1 else None)


def int8_qdq(source: Path, train: np.ndarray) -> tuple[bytes, str]:
    """Static int8 QDQ of an ONNX model, calibrated on a seeded pick of training images; (bytes, method).

    Per-channel weights, percentile-calibrated activations; the first convolution (raw ink in) and the
    heads (the logits' dense layer; the "none of these" score) stay float32: quantizing the first two cost 0.3
    points of accuracy on kmnist6k, and the score is compared with a threshold."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    calibration = train[np.random.default_rng(0).permutation(len(train))[:CALIBRATION_IMAGES]]

    size = min(64, len(calibration))  # equal batches: the percentile calibrator stacks what it collects

    class Batches(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{INPUT_NAME: to_input(calibration[i:i + size])}
                                 for i in range(0, len(calibration) - size + 1, size)])

        def get_next(self):
            return next(self.batches, None)

    with tempfile.TemporaryDirectory() as tmp:
        prepared, quantized = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        graph = onnx.load(str(prepared)).graph
        keep_float = [n.name for n in graph.node if n.op_type == "Conv"][:1] + _heads(graph)
        with contextlib.redirect_stdout(io.StringIO()):  # its calibrator prints progress; `--json` owns stdout
            quantize_static(str(prepared), str(quantized), Batches(), quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.Percentile, nodes_to_exclude=keep_float)
        return quantized.read_bytes(), (f"int8 QDQ: per-channel int8 weights, uint8 activations calibrated on "
                                        f"{len(calibration)} training images (percentile); first convolution "
                                        "and the heads (logits, 'none of these' score) float32")


def _heads(graph) -> list[str]:
    """The nodes after the shared features: with one output, its last dense layer; with two, every node that
    only one output depends on (the logits layer and softmax; the score's distance and head)."""
    if len(graph.output) < 2:
        return [n.name for n in graph.node if n.op_type in ("MatMul", "Gemm")][-1:]
    producer = {o: n for n in graph.node for o in n.output}

    def ancestors(tensor: str) -> set[str]:
        seen, todo = set(), [tensor]
        while todo:
            node = producer.get(todo.pop())
            if node is not None and node.name not in seen:
                seen.add(node.name)
                todo.extend(node.input)
        return seen

    first, second = (ancestors(o.name) for o in graph.output[:2])
    return sorted(first ^ second)


def float16_weights(source: Path, train: np.ndarray) -> tuple[bytes, str]:
    """The ONNX model with its weights stored as float16, cast back to float32 when the session loads them."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    casts = []
    for init in list(graph.initializer):
        w = numpy_helper.to_array(init)
        if w.dtype != np.float32 or w.size < 256:  # small tensors (biases, shapes) gain nothing
            continue
        graph.initializer.remove(init)
        graph.initializer.append(numpy_helper.from_array(w.astype(np.float16), init.name + "_f16"))
        casts.append(helper.make_node("Cast", [init.name + "_f16"], [init.name], to=onnx.TensorProto.FLOAT,
                                      name=init.name + "_cast"))
    for i, node in enumerate(casts):
        graph.node.insert(i, node)
    return model.SerializeToString(), "float16 weights, cast to float32 on load (float32 arithmetic)"


def export_run(run: runs.Run) -> dict:
    """Export a finished run's saved model (for runs trained before exports existed, and the shipped ones)."""
    return export_model(run.load_model(), run.path)


def export_or_record(model, run_dir: Path, images: Images | None = None) -> dict:
    """Export, but never fail the caller: a failure is recorded in export.json and the run keeps its Keras model."""
    try:
        return export_model(model, run_dir, images)
    except Exception as e:  # noqa: BLE001 - any converter failure must leave training's result intact
        info = {"state": "failed", "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
        files.write_json(Path(run_dir) / EXPORT_FILE, info)
        return info


def onnx_path(run: runs.Run) -> Path | None:
    """The run's exported model, or None when it has none (the server path and Keras then serve it)."""
    path = run.path / ONNX_FILE
    return path if path.is_file() else None


def browser_path(run: runs.Run) -> Path | None:
    """The model the browser runs: the checked smaller copy when the run has one, else model.onnx, else None."""
    path = run.path / BROWSER_FILE
    return path if path.is_file() and onnx_path(run) is not None else onnx_path(run)
