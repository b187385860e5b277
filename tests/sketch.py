"""Pen strokes from a 28x28 image, so a real character can be drawn on the canvas by a browser test.

Each row of ink becomes horizontal drags over its runs of ink pixels, scaled to the canvas;
`render` draws the same strokes the way the canvas does, to check a sketch offline first.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

Point = tuple[float, float]
Stroke = tuple[Point, Point]


def runs(row: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) column of each run of True values in a boolean row."""
    padded = np.concatenate([[False], row, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


def strokes(image: np.ndarray, size: int = 280, threshold: int = 128, step: int = 1) -> list[Stroke]:
    """Horizontal strokes in canvas pixels covering the ink of a uint8 image (light ink on dark).

    `step` > 1 takes every step-th row (drawn with a pen `step` rows wide), for fewer strokes.
    """
    image = np.asarray(image)
    scale = size / image.shape[1]
    out = []
    for y in range(0, image.shape[0], step):
        ink = (image[y: y + step] >= threshold).any(axis=0)
        cy = (y + step / 2) * scale
        for a, b in runs(ink):
            # A zero-length drag draws nothing, so single pixels get a short stroke.
            out.append((((a + 0.3) * scale, cy), ((b + 0.7) * scale, cy)))
    return out


def pen_width(size: int = 280, step: int = 1, image_size: int = 28) -> int:
    """Pen width that makes neighbouring strokes touch."""
    return int(round(size / image_size * step))


def render(stroke_list: list[Stroke], size: int = 280, width: int = 10) -> np.ndarray:
    """The canvas picture of these strokes: black round-capped lines on white, RGBA uint8."""
    img = Image.new("RGBA", (size, size), (255, 255, 255, 255))
    draw = ImageDraw.Draw(img)
    r = width / 2
    for (x0, y0), (x1, y1) in stroke_list:
        draw.line([(x0, y0), (x1, y1)], fill=(0, 0, 0, 255), width=width)
        for x, y in ((x0, y0), (x1, y1)):
            draw.ellipse([x - r, y - r, x + r, y + r], fill=(0, 0, 0, 255))
    return np.asarray(img)
