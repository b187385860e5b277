"""The Draw page as a tutor: forms to copy, the training images a drawing resembles, where the model looked,
and practice rounds.

Forms are the most typical training images of each class: nearest to the class centre in the model's own
feature space. For the shipped models they ship in assets/forms/ (derived from the kmnist6k training images,
as the models are), so the tutor works without any dataset; for other runs they are computed once from the
training images and kept in the cache dir.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from kmnist import datasets, files, runs
from kmnist.preprocess import SIZE, to_input

SHIPPED = files.ROOT / "assets" / "forms"  # forms of the shipped runs, committed
PER_CLASS = 32  # forms kept per class: "a few dozen", enough to copy from and to find neighbours among


@dataclass
class Forms:
    """The most typical training images of each class, most typical first."""
    run_id: str  # run whose feature space ranked them
    dataset: str  # dataset whose training images they are
    images: np.ndarray  # uint8 (N, 28, 28)
    labels: np.ndarray  # int (N,) class of each image
    positions: np.ndarray  # int (N,) position of each image in the dataset's training split

    def of(self, label: int) -> np.ndarray:
        """The forms of one class, most typical first."""
        return self.images[self.labels == label]


def typical(features: np.ndarray, labels: np.ndarray, num_classes: int, k: int = PER_CLASS) -> np.ndarray:
    """Positions of the k images per class nearest (cosine) to their class centre, most typical first."""
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    picks = []
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        if not len(members):
            continue
        centre = unit[members].mean(axis=0)
        order = np.argsort(-(unit[members] @ centre), kind="stable")
        picks.append(members[order[:k]])
    return np.concatenate(picks) if picks else np.zeros(0, np.int64)


def features(model, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """The model's penultimate features (the layer named "features") of uint8 images."""
    from kmnist.models import feature_model
    return np.asarray(feature_model(model).predict(to_input(images), batch_size=batch_size, verbose=0), np.float32)


def build_forms(run: runs.Run, model, images: np.ndarray, labels: np.ndarray, k: int = PER_CLASS) -> Forms:
    """Rank a run's training images by typicality in its feature space and keep k per class."""
    pos = typical(features(model, images), labels, len(run.classes), k)
    return Forms(run.id, run.config.dataset, images[pos], labels[pos].astype(np.int64), pos)


def save_forms(forms: Forms, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{forms.run_id}.npz"
    with files.atomic_open(path, "wb") as f:
        np.savez_compressed(f, images=forms.images, labels=forms.labels.astype(np.uint8),
                            positions=forms.positions.astype(np.uint16 if forms.positions.max(initial=0) < 2**16
                                                             else np.uint32), dataset=np.array(forms.dataset))
    return path


def read_forms(path: Path, run_id: str) -> Forms:
    with np.load(path) as z:
        return Forms(run_id, str(z["dataset"]), z["images"], z["labels"].astype(np.int64),
                     z["positions"].astype(np.int64))


def cache_dir() -> Path:
    return Path(os.environ.get("KMNIST_CACHE_DIR") or datasets.user_cache()).expanduser() / "forms"


def find_forms(run: runs.Run) -> Forms | None:
    """Stored forms of a run: shipped, else computed earlier (and no older than the model file)."""
    shipped, cached = SHIPPED / f"{run.id}.npz", cache_dir() / f"{run.id}.npz"
    if run.shipped and shipped.is_file():
        return read_forms(shipped, run.id)
    # A cached file older than the model belongs to an earlier model under the same run id.
    if cached.is_file() and cached.stat().st_mtime >= (run.path / runs.MODEL_FILE).stat().st_mtime:
        return read_forms(cached, run.id)
    return None


def forms_for(run: runs.Run, model, root: Path | None = None) -> Forms | None:
    """The run's forms: stored ones, else computed from its training images (then cached); None without data."""
    found = find_forms(run)
    if found is not None:
        return found
    try:
        images = datasets.load_images(run.config.dataset, "train", root)
        labels = datasets.load_labels(run.config.dataset, "train", root)
    except (datasets.DataMissingError, ValueError):
        return None
    forms = build_forms(run, model, images, labels)
    save_forms(forms, cache_dir())
    return forms


# One drawing, from whichever input made it.

@dataclass
class Drawn:
    """A drawing ready for the tutor: the canvas, an upload or the live component all produce one."""
    seen: np.ndarray  # uint8 (28, 28): framed like the dataset, what the model reads
    raw: bytes | np.ndarray | None  # the picture as drawn or uploaded: PNG/JPEG bytes or an RGBA/grey array
    source: str  # "canvas", "upload" or "live"
    probs: np.ndarray | None = None  # the model's answer when the browser already read it (live), else None
    score: float | None = None  # with it, the browser's "none of these" score (kmnist.unknown), None without one

    @property
    def key(self) -> str:
        """Identifies the drawing: the same framed image from the same input is the same drawing."""
        import hashlib
        return hashlib.sha1(self.source.encode() + np.ascontiguousarray(self.seen).tobytes()).hexdigest()[:12]

    def raw_png(self) -> bytes | None:
        """The raw picture as PNG bytes (uploads keep their own encoding)."""
        if self.raw is None or isinstance(self.raw, bytes):
            return self.raw
        import io
        from PIL import Image
        buf = io.BytesIO()
        Image.fromarray(np.asarray(self.raw, np.uint8)).save(buf, format="PNG")
        return buf.getvalue()


# What a drawing resembles and where the model looked.

@dataclass
class Explainer:
    """A model's feature and saliency functions, traced once, plus the forms' features to search."""
    model: object  # the Keras model
    forms: Forms | None  # reference images for the nearest-neighbour search
    _features: object = field(init=False, repr=False)
    _saliency: object = field(init=False, repr=False)
    _unit: np.ndarray | None = field(init=False, repr=False)

    def __post_init__(self):
        import tensorflow as tf
        from kmnist.models import feature_model
        feat = feature_model(self.model)
        self._features = tf.function(lambda x: feat(x, training=False), reduce_retracing=True,
                                     input_signature=[tf.TensorSpec((None, SIZE, SIZE, 1), tf.float32)])
        model = self.model

        def saliency(x, label, noise):
            # SmoothGrad: gradients of the class's log-probability, averaged over a few noisy copies.
            xs = x + noise
            with tf.GradientTape() as tape:
                tape.watch(xs)
                logp = tf.math.log(model(xs, training=False)[:, label] + 1e-9)
            return tf.reduce_mean(tf.abs(tape.gradient(logp, xs)), axis=0)[..., 0]

        self._saliency = tf.function(saliency, reduce_retracing=True, input_signature=[
            tf.TensorSpec((1, SIZE, SIZE, 1), tf.float32), tf.TensorSpec((), tf.int32),
            tf.TensorSpec((None, SIZE, SIZE, 1), tf.float32)])
        self._unit = None
        if self.forms is not None and len(self.forms.images):
            self._unit = _normalise(np.asarray(self._features(to_input(self.forms.images))))
        blank = np.zeros((SIZE, SIZE), np.uint8)
        self.nearest(blank), self.saliency(blank, 0)  # trace now, not on the first stroke

    def nearest(self, image: np.ndarray, k: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(images, labels, cosine similarity) of the k forms nearest the image in feature space."""
        if self._unit is None:
            empty = np.zeros(0)
            return np.zeros((0, SIZE, SIZE), np.uint8), empty.astype(np.int64), empty
        q = _normalise(np.asarray(self._features(to_input(image))))[0]
        sim = self._unit @ q
        order = np.argsort(-sim, kind="stable")[:k]
        return self.forms.images[order], self.forms.labels[order], sim[order]

    def saliency(self, image: np.ndarray, label: int, samples: int = 8, seed: int = 0) -> np.ndarray:
        """How much each pixel sways the class's probability: float32 (28, 28) in 0..1."""
        noise = np.random.default_rng(seed).normal(0, 0.1 * 255, (samples, SIZE, SIZE, 1)).astype(np.float32)
        grad = np.asarray(self._saliency(to_input(image), np.int32(label), noise))
        from scipy import ndimage
        grad = ndimage.gaussian_filter(grad, 0.8)
        top = grad.max()
        return (grad / top if top > 0 else grad).astype(np.float32)


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def overlay(image: np.ndarray, heat: np.ndarray, strength: float = 0.75) -> np.ndarray:
    """The 28x28 input in grey with the saliency as a red-to-yellow glow: uint8 RGB (28, 28, 3)."""
    grey = np.asarray(image, np.float32)[..., None] / 255.0 * np.ones(3, np.float32) * 0.55
    colour = np.stack([np.ones_like(heat), heat, np.zeros_like(heat)], axis=-1)  # red, to yellow where strongest
    a = (strength * heat)[..., None]
    return ((grey * (1 - a) + colour * a) * 255).round().astype(np.uint8)


def trace_background(form: np.ndarray | None, size: int, strength: float = 0.25) -> bytes:
    """PNG bytes of a form as a faint grey character on white paper at canvas size (plain paper for None).

    The canvas shows it behind the strokes and never sends it back, so it is not read as ink.
    """
    import io
    from PIL import Image
    form = np.zeros((SIZE, SIZE), np.uint8) if form is None else form
    big = np.asarray(Image.fromarray(form).resize((size, size), Image.Resampling.BICUBIC), np.float32) / 255.0
    grey = (255.0 * (1.0 - strength * np.clip(big, 0, 1))).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(grey).convert("RGB").save(buf, format="PNG")
    return buf.getvalue()


@cache
def paper(size: int) -> bytes:
    """`trace_background` with no form (plain white paper), built once per size: the canvas shows it every stroke."""
    return trace_background(None, size)


# Practice: the page names a class, the person draws it, the page scores it.

@dataclass
class Attempt:
    target: int  # the class asked for
    predicted: int  # what the model read
    prob: float  # the model's probability of the target class
    right: bool  # predicted == target


@dataclass
class Tally:
    """A practice session's score, kept in the browser session."""
    attempts: list[Attempt] = field(default_factory=list)  # every scored attempt, in order

    @property
    def right(self) -> int:
        return sum(a.right for a in self.attempts)

    def record(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)

    def summary(self) -> str:
        n = len(self.attempts)
        return f"{self.right} of {n} right" + (f" ({self.right / n:.0%})" if n else "")


def next_target(num_classes: int, rng: np.random.Generator, previous: int | None = None) -> int:
    """A random class to practise, never the same one twice in a row."""
    if num_classes < 2:
        return 0
    pick = int(rng.integers(num_classes - 1))
    return pick + (previous is not None and pick >= previous)


def score(probs: np.ndarray, target: int) -> Attempt:
    predicted = int(np.argmax(probs))
    return Attempt(target, predicted, float(probs[target]), predicted == target)
