"""Strokes from an image, and their canvas-like rendering."""
import numpy as np

from kmnist.preprocess import prepare
from tests import sketch


def test_runs_finds_each_run_of_ink():
    assert sketch.runs(np.array([0, 1, 1, 0, 1, 0, 0, 1], bool)) == [(1, 2), (4, 4), (7, 7)]
    assert sketch.runs(np.zeros(5, bool)) == []


def test_strokes_cover_the_ink_rows_in_canvas_pixels():
    image = np.zeros((28, 28), np.uint8)
    image[10, 5:9] = 255
    image[20, 14] = 200
    out = sketch.strokes(image, size=280)
    assert out == [((53.0, 105.0), (87.0, 105.0)), ((143.0, 205.0), (147.0, 205.0))]
    assert len(sketch.strokes(image, size=280, threshold=220)) == 1, "faint ink is left out"


def test_step_merges_rows():
    image = np.zeros((28, 28), np.uint8)
    image[10:12, 5:9] = 255
    assert len(sketch.strokes(image, step=1)) == 2
    assert len(sketch.strokes(image, step=2)) == 1
    assert sketch.pen_width(280, step=2) == 20


def test_rendered_strokes_frame_back_to_the_character():
    """A bar drawn as strokes comes back through prepare as a bar in the same place."""
    image = np.zeros((28, 28), np.uint8)
    image[6:22, 12:16] = 255
    canvas = sketch.render(sketch.strokes(image, size=280), size=280, width=sketch.pen_width(280))
    assert canvas.shape == (280, 280, 4) and canvas.dtype == np.uint8
    seen = prepare(canvas)
    ink = seen > 128
    cols = np.flatnonzero(ink.any(axis=0))
    assert ink.sum() > 20 and cols.max() - cols.min() < 8, f"expected a narrow vertical bar, got columns {cols}"
