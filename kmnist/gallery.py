"""Example images for the pages: which images to show per class, and how to lay them out crisply."""
from __future__ import annotations

import numpy as np


def samples(labels: np.ndarray, label: int, k: int, seed: int = 0) -> np.ndarray:
    """Up to k positions of images with this label, a seeded random pick in dataset order."""
    idx = np.flatnonzero(np.asarray(labels) == label)
    if len(idx) <= k:
        return idx
    return np.sort(np.random.default_rng(seed + label).choice(idx, size=k, replace=False))


def samples_per_class(labels: np.ndarray, num_classes: int, k: int, seed: int = 0) -> list[np.ndarray]:
    """`samples` for every class in label order (empty arrays for classes without images)."""
    return [samples(labels, c, k, seed) for c in range(num_classes)]


def enlarge(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscaling, so browsers show sharp pixels instead of a blur."""
    return np.kron(np.asarray(image), np.ones((factor, factor), dtype=np.asarray(image).dtype))


def tile(images: np.ndarray, cols: int, factor: int = 2, gap: int = 2, fill: int = 64) -> np.ndarray:
    """One uint8 picture of images (N, H, W) in a grid of `cols` columns, enlarged, with grey gaps.

    One picture per grid keeps a page to a single image element however many samples it shows.
    """
    images = np.asarray(images, dtype=np.uint8)
    if images.ndim != 3 or len(images) == 0:
        raise ValueError("tile needs a non-empty stack of images (N, H, W)")
    n, h, w = images.shape
    cols = max(1, min(cols, n))
    rows = -(-n // cols)
    cell_h, cell_w = h * factor, w * factor
    out = np.full((rows * cell_h + (rows - 1) * gap, cols * cell_w + (cols - 1) * gap), fill, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        top, left = r * (cell_h + gap), c * (cell_w + gap)
        out[top: top + cell_h, left: left + cell_w] = enlarge(img, factor)
    return out
