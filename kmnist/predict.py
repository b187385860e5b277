"""Class probabilities for batches of images and for the single image the canvas sends."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kmnist.classes import ClassInfo
from kmnist.preprocess import to_input


def predict_proba(model, images: np.ndarray, batch_size: int = 512, tta: bool = False) -> np.ndarray:
    """Probabilities (N, classes) for uint8 images (N, 28, 28); tta averages over one-pixel shifts."""
    x = to_input(images)
    probs = model.predict(x, batch_size=batch_size, verbose=0)
    if tta:
        for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
            probs = probs + model.predict(np.roll(x, (dy, dx), axis=(1, 2)), batch_size=batch_size, verbose=0)
        probs = probs / 5.0
    return np.asarray(probs)


def _reading(outputs) -> tuple[np.ndarray, float | None]:
    """(probabilities, "none of these" score or None) of one image from a model's one or two outputs."""
    if isinstance(outputs, (list, tuple)):
        return np.asarray(outputs[0])[0], (float(np.asarray(outputs[1])[0]) if len(outputs) > 1 else None)
    return np.asarray(outputs)[0], None


class Predictor:
    """The fast path for one image: a direct call, compiled once for a fixed input shape.

    With a "none of these" rule (kmnist.unknown) it also gives the rule's score, as the exported model does.
    """

    def __init__(self, model, rule=None):
        import tensorflow as tf
        from kmnist.unknown import with_score
        self.model = model
        graph = with_score(model, rule) if rule is not None else model
        self._call = tf.function(lambda x: graph(x, training=False), reduce_retracing=True,
                                 input_signature=[tf.TensorSpec((1, 28, 28, 1), tf.float32)])
        self(np.zeros((28, 28), np.uint8))  # trace now, not on the first stroke

    def read(self, image: np.ndarray) -> tuple[np.ndarray, float | None]:
        """Probabilities and the "none of these" score (None without a rule) of one image."""
        return _reading(self._call(to_input(image)))

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.read(image)[0]


class OnnxPredictor:
    """The same call as Predictor on a run's exported model.onnx: onnxruntime, untouched by Keras resets."""

    def __init__(self, path):
        from kmnist.export import session
        self._session = session(path)
        self._input = self._session.get_inputs()[0].name
        self.outputs = len(self(np.zeros((28, 28), np.uint8)))  # one call allocates now, not on the first stroke

    def read(self, image: np.ndarray) -> tuple[np.ndarray, float | None]:
        """Probabilities and the "none of these" score (None when the export has no score output) of one image."""
        return _reading(self._session.run(None, {self._input: to_input(image)}))

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.read(image)[0]


@dataclass
class Guess:
    index: int  # class index
    char: str  # the character
    romaji: str  # its reading
    prob: float  # model probability
    kanji: str = ""  # its source kanji (字母), "" where there is none


def top_k(probs: np.ndarray, classes: list[ClassInfo], k: int = 5) -> list[Guess]:
    order = np.argsort(probs)[::-1][:k]
    return [Guess(int(i), classes[i].char, classes[i].romaji, float(probs[i]), classes[i].kanji) for i in order]
