"""Font renders: found by the characters a font carries, drawn like a canvas drawing."""
import numpy as np
import pytest

from kmnist import glyphs, preprocess


def test_fonts_with_finds_only_fonts_carrying_every_character():
    fonts = glyphs.fonts_with("の")
    if not fonts:
        pytest.skip("no font with hiragana is installed here (Debian: fonts-ipafont)")
    assert all(ord("の") in glyphs._codepoints(f) for f in fonts)
    assert glyphs.fonts_with("の\U0010fffd") == [], "no font carries a private-use plane-16 code point"


def test_render_is_dark_ink_on_white_and_frames_like_a_drawing():
    fonts = glyphs.fonts_with("の")
    if not fonts:
        pytest.skip("no font with hiragana is installed here (Debian: fonts-ipafont)")
    img = glyphs.render("の", fonts[0], px=128)
    assert img.shape == (128, 128) and img.dtype == np.uint8
    assert img[0].min() == 255 and img.min() < 64, "white paper at the border, dark ink inside"
    framed = preprocess.prepare(img)
    assert framed.shape == (28, 28) and framed.max() > 200, "the render reaches the model as a framed character"
