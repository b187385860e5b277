"""On-the-fly augmentation: small random affine changes of training batches."""
from __future__ import annotations


def augmenter(strength: float, seed: int):
    """A Keras layer stack applying random rotation, shift and zoom scaled by `strength`."""
    import keras
    from keras import layers
    return keras.Sequential([
        layers.RandomRotation(0.04 * strength, fill_mode="constant", seed=seed),
        layers.RandomTranslation(0.08 * strength, 0.08 * strength, fill_mode="constant", seed=seed + 1),
        layers.RandomZoom(0.1 * strength, fill_mode="constant", seed=seed + 2),
    ], name="augment")
