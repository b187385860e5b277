"""A run's "none of these" rule: when a drawing looks like none of the characters the run knows.

The score reads the drawing's penultimate features (the layer named "features"): their Mahalanobis distance to
the nearest class (class means and one shared covariance, fitted on the run's training split), and a logistic
head over that distance and the features themselves, fitted to tell the training images (and print renders of
the run's own characters) from outliers the team makes: the K49 characters the run does not know set in the
installed fonts, MNIST digits, scribbles. On held-out fonts and digits it turns away more than the plain
maximum probability or the distance alone, and flags fewer print renders of known characters
(`benchmarks/unknown.py`, BENCHMARKS.md). The threshold is chosen on the run's own validation split so that a
stated share of it (KEEP) still reads as known; anything scoring above it reads "none of these". The real K49
images of other characters (k49-partial) only report the result; they never choose anything.

The rule is saved beside the model (`unknown.json`: threshold and how it was chosen; `unknown.npz`: means,
whitening, head) and goes into the run's `model.onnx` as a second output, the score, so the browser applies the
very same rule with the threshold the page hands it. `calibrate` makes the rule for any run with a model
(training calls it at the end of every run; `python -m kmnist calibrate --run ID` for older ones) and
re-exports the model with the score output.
"""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from kmnist import KmnistError, classes as cls, datasets, files, glyphs, runs
from kmnist.preprocess import EmptyImageError, prepare, to_input

RULE_FILE, ARRAYS_FILE = "unknown.json", "unknown.npz"
SCORE = "head(sqrt features, log(1 + mahalanobis))"  # what the score is (recorded in unknown.json)
FEATURES = "features"  # the penultimate layer the score reads
KEEP = 0.95  # share of validation images the threshold keeps as known (the target: at least 95%)
# The covariance is shrunk toward its mean variance by this share of it: 256 features from a few thousand
# images (or a few dozen in a tiny run) leave some directions nearly flat, and an exact inverse blows them up.
SHRINK = 0.01
HEAD_C = 1.0  # inverse L2 strength of the logistic head (chosen on held-out fonts: benchmarks/unknown.py)
# Weight of one print render of a known character against one training image: a few hundred renders among
# thousands of training images would barely count, and print style alone would then read "none of these"
# (a third of known-character renders in held-out fonts at weight 1, 4% at 5, at no cost on the outliers).
KNOWN_PRINT_WEIGHT = 5.0
MAX_FONTS = 16  # fonts whose renders teach the head, spread over those installed that carry all 49 characters
MNIST_DIGITS = 1000  # MNIST test digits among the outliers, where the data dir has MNIST
SCRIBBLES = 300  # seeded random pen scribbles among the outliers


class CalibrationError(KmnistError, ValueError):
    """A rule cannot be made: no validation images, or a model without the features layer."""


@dataclass
class Rule:
    """When an image reads "none of these": its score is above `threshold`."""
    threshold: float  # scores above it read "none of these"
    means: np.ndarray  # float64 (classes with training images, D): class means of the training features
    whiten: np.ndarray  # float64 (D, D): squared Mahalanobis distance = |(feature - mean) @ whiten|^2
    head: np.ndarray  # float64 (D + 1,): logistic weights on [sqrt(features), log(1 + distance)]
    bias: float  # the head's intercept
    keep: float = KEEP  # the share of validation images the threshold was chosen to keep
    info: dict | None = None  # how it was chosen (unknown.json as written): validation counts, shares, timing

    def distances(self, features: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance of each feature row (N, D) to its nearest class mean."""
        g = np.asarray(features, np.float64) @ self.whiten
        m = self.means @ self.whiten
        return ((g[:, None, :] - m[None]) ** 2).sum(-1).min(-1)

    def scores(self, features: np.ndarray) -> np.ndarray:
        """The head's logit that each feature row (N, D) is none of the known characters."""
        return design(features, self.distances(features)) @ self.head + self.bias

    def flags(self, scores) -> np.ndarray:
        """True where a score reads "none of these"."""
        return np.asarray(scores) > self.threshold


def design(features: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """What the head reads: square-rooted features (ReLU outputs, skewed) and the log distance."""
    return np.c_[np.sqrt(np.maximum(np.asarray(features, np.float64), 0)), np.log1p(distances)]


def fit(features: np.ndarray, labels: np.ndarray, known: np.ndarray, outliers: np.ndarray,
        shrink: float = SHRINK, c: float = HEAD_C) -> Rule:
    """The distance from training features (N, D) and labels, and the head telling them and `known` (print
    renders of the known characters) from `outliers`; no threshold yet."""
    from sklearn.linear_model import LogisticRegression
    features = np.asarray(features, np.float64)
    # Only classes with training images have a mean: the score is the distance to the nearest one, whichever.
    means = np.stack([features[labels == c].mean(0) for c in np.unique(labels)])
    centred = features - means[np.unique(labels, return_inverse=True)[1]]
    cov = centred.T @ centred / max(len(features), 1)
    dim = cov.shape[0]
    cov += shrink * (np.trace(cov) / dim + 1e-12) * np.eye(dim)
    whiten = np.linalg.cholesky(np.linalg.inv(cov))  # inv(cov) = L L^T, so d^2 = |x L|^2
    rule = Rule(threshold=np.inf, means=means, whiten=whiten, head=np.zeros(dim + 1), bias=0.0)
    inside = np.concatenate([features, np.asarray(known, np.float64).reshape(-1, dim)])
    outside = np.asarray(outliers, np.float64).reshape(-1, dim)
    x = design(np.concatenate([inside, outside]), rule.distances(np.concatenate([inside, outside])))
    y = np.r_[np.zeros(len(inside)), np.ones(len(outside))]
    # The outliers weigh as much in all as the training images; print renders of known characters count extra.
    weight = np.r_[np.ones(len(features)), np.full(len(inside) - len(features), KNOWN_PRINT_WEIGHT),
                   np.full(len(outside), len(features) / max(len(outside), 1))]
    head = LogisticRegression(C=c, max_iter=5000).fit(x, y, sample_weight=weight)
    rule.head, rule.bias = head.coef_[0].astype(np.float64), float(head.intercept_[0])
    return rule


def threshold_keeping(scores: np.ndarray, keep: float) -> float:
    """The smallest threshold under which at least `keep` of these scores fall (score <= threshold is known)."""
    ordered = np.sort(np.asarray(scores, np.float64))
    return float(ordered[max(int(np.ceil(keep * len(ordered))) - 1, 0)])


def reader(model):
    """A Keras model giving (probabilities, penultimate features) for a batch of model input."""
    import keras
    try:
        features = model.get_layer(FEATURES).output
    except ValueError:
        raise CalibrationError(f"the model has no layer named {FEATURES!r}: no feature-space rule for it") from None
    return keras.Model(model.input, [model.outputs[0], features])


def read(model, images: np.ndarray, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities (N, classes) and features (N, D) of uint8 images (N, 28, 28)."""
    probs, features = reader(model).predict(to_input(images), batch_size=batch_size, verbose=0)
    return np.asarray(probs), np.asarray(features)


def with_score(model, rule: Rule):
    """The model with a second output, the rule's score (float32 (N,)): what model.onnx carries for the browser."""
    import keras
    from keras import ops

    class UnknownScore(keras.layers.Layer):
        """The rule's score: the head's logit on the features and their distance to the nearest class."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.whiten = ops.convert_to_tensor(rule.whiten.astype(np.float32))
            self.centres = ops.convert_to_tensor((rule.means @ rule.whiten).astype(np.float32))
            self.head = ops.convert_to_tensor(rule.head.astype(np.float32))

        def call(self, features):
            g = ops.matmul(features, self.whiten)
            distance = ops.min(ops.sum(ops.square(g[:, None, :] - self.centres[None]), axis=-1), axis=-1)
            x = ops.concatenate([ops.sqrt(ops.relu(features)), ops.log(distance + 1.0)[:, None]], axis=-1)
            return ops.matmul(x, self.head) + rule.bias

    features = reader(model).outputs[1]
    return keras.Model(model.input, [model.outputs[0], UnknownScore(name="unknown")(features)])


def save(rule: Rule, run_dir: Path) -> None:
    """unknown.npz, then unknown.json (the file that says a rule exists), each placed atomically."""
    with files.atomic_open(Path(run_dir) / ARRAYS_FILE, "wb", suffix=".npz") as f:
        np.savez(f, means=rule.means, whiten=rule.whiten, head=rule.head, bias=rule.bias)
    files.write_json(Path(run_dir) / RULE_FILE, (rule.info or {}) | {
        "score": SCORE, "features": FEATURES, "threshold": rule.threshold, "keep": rule.keep})


def load(run: runs.Run | Path) -> Rule | None:
    """The rule of a run (or run directory), or None when it has none (runs made before rules existed:
    `calibrate` makes one)."""
    run_dir = run.path if isinstance(run, runs.Run) else Path(run)
    path = run_dir / RULE_FILE
    if not path.is_file():
        return None
    stat = path.stat()
    return _load(str(run_dir), stat.st_mtime, stat.st_size)


@lru_cache(maxsize=8)
def _load(run_dir: str, mtime: float, size: int) -> Rule | None:
    info = files.read_json(Path(run_dir) / RULE_FILE)
    if isinstance(info, dict) and info.get("state") == "failed":
        return None  # calibrate_or_record kept why; the run answers without the rule
    try:
        with np.load(Path(run_dir) / ARRAYS_FILE) as arrays:
            means, whiten, head, bias = arrays["means"], arrays["whiten"], arrays["head"], float(arrays["bias"])
        return Rule(float(info["threshold"]), means, whiten, head, bias, float(info.get("keep", KEEP)), info)
    except (OSError, KeyError, TypeError, ValueError) as e:
        raise runs.RunError(f"the 'none of these' rule of run {Path(run_dir).name!r} is unreadable "
                            f"({type(e).__name__}: {e}); make it again with `python -m kmnist calibrate "
                            f"--run {Path(run_dir).name}`") from None


def decide(run: runs.Run, scores) -> list[bool | None]:
    """Whether each score reads "none of these" under the run's rule; None for each where the run has no rule."""
    rule = load(run)
    scores = np.atleast_1d(np.asarray(scores, np.float64))
    return [None] * len(scores) if rule is None else [bool(f) for f in rule.flags(scores)]


def run_splits(run: runs.Run, data_root: Path | None = None) -> tuple[datasets.Split, datasets.Split]:
    """The run's training and validation splits, carved exactly as its training carved them (kmnist.train.prepare)."""
    config = run.config
    data = datasets.load(config.dataset, data_root).train
    images, labels = data.images, data.labels
    if config.limit:
        images, labels = images[: config.limit], labels[: config.limit]
    tr, va = datasets.split_train_val(labels, config.val_fraction, config.seed)
    return datasets.Split(images[tr], labels[tr]), datasets.Split(images[va], labels[va])


@dataclass
class TeamData:
    """Images the team makes for the head (never real handwriting): uint8 (N, 28, 28) each, framed for the run."""
    known: np.ndarray  # the run's own characters set in fonts: print style alone is not "none of these"
    fonts: np.ndarray  # the K49 characters the run does not know, set in the same fonts
    digits: np.ndarray  # MNIST test digits (none where the data dir lacks MNIST, or the run knows digits)
    scribbles: np.ndarray  # seeded random pen scribbles
    font_names: list[str]  # the font files used


def scribbles(n: int, framing, seed: int = 0, px: int = 128) -> np.ndarray:
    """`n` seeded scribbles (1-4 strokes of 2-5 points each, varied widths), framed like drawings."""
    from PIL import Image, ImageDraw
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        picture = Image.new("L", (px, px), 255)
        pen = ImageDraw.Draw(picture)
        for _ in range(rng.integers(1, 5)):
            points = [tuple(rng.uniform(0.08, 0.92, 2) * px) for _ in range(rng.integers(2, 6))]
            pen.line(points, fill=0, width=int(rng.integers(px // 32, px // 10)), joint="curve")
        try:
            out.append(prepare(np.asarray(picture), framing))
        except EmptyImageError:
            continue
    return np.stack(out)


def _set_in(chars: list[str], fonts: list[Path], framing, px: int = 128) -> np.ndarray:
    """Every character set in every font, font-major: uint8 (fonts * chars, 28, 28)."""
    images = [prepare(glyphs.render(c, f, px), framing) for f in fonts for c in chars]
    return np.stack(images) if images else np.zeros((0, 28, 28), np.uint8)


def _renders(font: Path) -> bool:
    """Whether FreeType sets this font without error (some installed fonts carry broken hinting programs)."""
    try:
        glyphs.render(cls.k49_classes()[0].char, font, 32)
        return True
    except (OSError, ValueError):
        return False


def team_data(run: runs.Run, data_root: Path | None = None, max_fonts: int = MAX_FONTS) -> TeamData:
    """The team-made images for a run's head: fonts spread over those installed that carry all 49 characters."""
    known = [c.char for c in run.classes]
    others = [c.char for c in cls.k49_classes() if c.char not in known]
    fonts = [f for f in glyphs.fonts_with("".join(c.char for c in cls.k49_classes())) if _renders(f)]
    fonts = fonts[:: max(1, len(fonts) // max_fonts)][:max_fonts]
    digits = np.zeros((0, 28, 28), np.uint8)
    if not {c.char for c in cls.digit_classes()} & set(known):
        try:
            digits = datasets.load_images("mnist", "test", data_root)[:MNIST_DIGITS]
        except (datasets.DataMissingError, datasets.BadDataError):
            pass  # the fonts and scribbles teach it alone
    return TeamData(_set_in(known, fonts, run.framing), _set_in(others, fonts, run.framing), digits,
                    scribbles(SCRIBBLES, run.framing), [f.name for f in fonts])


def calibrate(run: runs.Run, model=None, train: datasets.Split | None = None, val: datasets.Split | None = None,
              keep: float = KEEP, data_root: Path | None = None) -> Rule:
    """Fit the run's rule and save it beside the model; the next export puts its score into model.onnx.

    `model` defaults to the run's saved model; `train` and `val` to the run's own splits of its dataset (pass
    them when training holds them already, or when a fine-tune adds images of new classes to `train`);
    `data_root` is where MNIST is looked for.
    """
    started = time.time()
    model = run.load_model() if model is None else model
    if train is None or val is None:
        carved = run_splits(run, data_root)
        train, val = train or carved[0], val or carved[1]
    if not len(val.labels):
        raise CalibrationError(f"run {run.id!r} has no validation images to choose a threshold on")
    team = team_data(run, data_root)
    _, train_features = read(model, train.images)
    part = {name: read(model, images)[1] if len(images) else np.zeros((0, train_features.shape[1]))
            for name, images in (("known_fonts", team.known), ("fonts", team.fonts), ("digits", team.digits),
                                 ("scribbles", team.scribbles))}
    rule = fit(train_features, train.labels, part["known_fonts"],
               np.concatenate([part["fonts"], part["digits"], part["scribbles"]]))
    val_probs, val_features = read(model, val.images)
    val_scores = rule.scores(val_features)
    rule.threshold, rule.keep = threshold_keeping(val_scores, keep), keep
    kept = ~rule.flags(val_scores)
    rule.info = {"validation_images": int(len(val_scores)), "validation_kept": float(kept.mean()),
                 "validation_accuracy_kept": float((val_probs.argmax(1) == val.labels)[kept].mean()),
                 "train_images": int(len(train.labels)), "shrink": SHRINK, "head_c": HEAD_C,
                 "known_print_weight": KNOWN_PRINT_WEIGHT, "fonts": team.font_names,
                 # Shares of the team-made images turned away: what the head was fitted on, so no test of it.
                 "team_data": {name: {"images": len(f), "turned_away": float(rule.flags(rule.scores(f)).mean())
                                      if len(f) else None} for name, f in part.items()},
                 "seconds": round(time.time() - started, 3),
                 "made": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    save(rule, run.path)
    return rule


def calibrate_or_record(run: runs.Run, model, train: datasets.Split, val: datasets.Split,
                        data_root: Path | None = None) -> Rule | None:
    """`calibrate` for the end of a training: a failure is recorded in unknown.json, never raised."""
    try:
        return calibrate(run, model, train, val, data_root=data_root)
    except Exception as e:  # noqa: BLE001 - training's result must stay intact whatever the rule's fit does
        files.write_json(run.path / RULE_FILE, {"state": "failed", "error": f"{type(e).__name__}: {e}",
                                                "traceback": traceback.format_exc()})
        return None
