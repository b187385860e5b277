"""The one preprocessing path: dataset arrays, drawings of any size and polarity, uploads, bad input."""
from __future__ import annotations

import numpy as np
import pytest

from kmnist import preprocess as pp
from tests.conftest import png


def drawing(size=280, thickness=18, dark_on_light=True) -> np.ndarray:
    """A cross drawn off-centre on a large canvas, like a canvas stroke."""
    img = np.zeros((size, size), np.uint8)
    img[60:60 + thickness, 40:200] = 255
    img[30:230, 110:110 + thickness] = 255
    return 255 - img if dark_on_light else img


def test_to_input_shapes():
    x = pp.to_input(np.zeros((5, 28, 28), np.uint8))
    assert x.shape == (5, 28, 28, 1) and x.dtype == np.float32
    assert pp.to_input(np.full((28, 28), 255, np.uint8)).max() == 255, "models rescale inside; input stays 0..255"


def test_drawing_is_framed_like_the_dataset():
    f = pp.DEFAULT_FRAMING
    out = pp.prepare(drawing())
    assert out.shape == (28, 28) and out.dtype == np.uint8
    ys, xs = np.nonzero(out > 255 * pp.INK)
    assert max(np.ptp(ys), np.ptp(xs)) + 1 >= f.box - 1, "the longer side should fill the box like training images"
    assert abs(pp.stroke_thickness(out > 127) - f.stroke) < 1.5, "stroke width should match the dataset's"


def test_drawing_is_centred_by_mass_when_there_is_room():
    from scipy import ndimage
    f = pp.Framing(box=20, com_y=12.0, com_x=15.0, stroke=2.5)
    out = pp.prepare(drawing(), f)
    cy, cx = ndimage.center_of_mass(out.astype(float))
    assert abs(cy - f.com_y) < 1.0 and abs(cx - f.com_x) < 1.0, f"centre of mass {cy:.1f},{cx:.1f}"
    assert out[0].max() == 0 and out[-1].max() == 0, "a smaller box leaves the frame's edges empty"


def test_polarity_is_detected():
    a, b = pp.prepare(drawing(dark_on_light=True)), pp.prepare(drawing(dark_on_light=False))
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 2
    assert a[0, 0] == 0, "output is light ink on a dark background"


def test_thin_and_thick_strokes_converge():
    thin = pp.stroke_thickness(pp.prepare(drawing(thickness=4)) > 127)
    thick = pp.stroke_thickness(pp.prepare(drawing(thickness=40)) > 127)
    assert abs(thin - thick) < 1.5, f"stroke widths after framing differ: {thin:.2f} vs {thick:.2f}"


def test_dataset_style_images_pass_unchanged():
    img = np.zeros((28, 28), np.uint8)
    img[5:20, 10:14] = 200
    assert np.array_equal(pp.prepare(img), img)


def test_rgba_canvas_with_transparent_background():
    rgba = np.zeros((200, 200, 4), np.uint8)
    rgba[50:150, 90:105] = (0, 0, 0, 255)  # black stroke, transparent elsewhere
    out = pp.prepare(rgba)
    assert out.max() == 255 and out[0, 0] == 0


def test_empty_inputs_are_refused():
    with pytest.raises(pp.EmptyImageError):
        pp.prepare(np.full((280, 280), 255, np.uint8))
    with pytest.raises(pp.EmptyImageError):
        pp.prepare(np.zeros((280, 280, 4), np.uint8))


def test_uploads(tmp_path):
    assert pp.prepare(png(drawing())).shape == (28, 28)
    with pytest.raises(pp.BadImageError, match="not a readable"):
        pp.prepare(b"this is not an image")
    with pytest.raises(pp.BadImageError, match="limit"):
        pp.prepare(b"\0" * (pp.MAX_UPLOAD_BYTES + 1))


def test_framing_is_measured_from_images():
    imgs = np.zeros((10, 28, 28), np.uint8)
    imgs[:, 4:24, 8:12] = 255
    f = pp.measure_framing(imgs)
    assert f.box == 20 and abs(f.com_y - 13.5) < 0.01 and abs(f.com_x - 9.5) < 0.01 and 3 <= f.stroke <= 6
