"""Characters set in the fonts installed here: stand-ins for handwriting and forms to trace.

Team-made data, never real handwriting: font renders serve as outliers when a run's "none of these" rule is
chosen, as stand-in drawings in the teaching benchmark, and as hentaigana forms to trace for characters the
data has no images of. A render is a picture like a canvas drawing (dark ink on white paper), so it reaches a
model through `preprocess.prepare`, the same path as every drawing.
"""
from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path

import numpy as np
from fontTools.ttLib import TTCollection, TTFont
from PIL import Image, ImageDraw, ImageFont

FONT_SUFFIXES = (".ttf", ".otf", ".ttc", ".otc")


def _font_files(chars: str = "") -> list[Path]:
    """Every font file fontconfig knows (that it says carries `chars`: a fast first cut), links resolved
    (empty where fontconfig is missing)."""
    pattern = [":charset=" + " ".join(f"{ord(c):x}" for c in chars)] if chars else []
    try:
        out = subprocess.run(["fc-list", "--format", "%{file}\n", *pattern], capture_output=True, text=True,
                             timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted({Path(line).resolve() for line in out.splitlines() if line.lower().endswith(FONT_SUFFIXES)})


@lru_cache(maxsize=None)
def _codepoints(path: Path) -> frozenset[int]:
    """The code points the first face of a font file carries."""
    try:
        font = TTCollection(path).fonts[0] if path.suffix.lower() in (".ttc", ".otc") else TTFont(path, lazy=True)
        return frozenset(font.getBestCmap() or {})
    except Exception:  # noqa: BLE001 - an unreadable font file is simply not a candidate
        return frozenset()


def fonts_with(chars: str) -> list[Path]:
    """Installed font files that carry every character of `chars`, in a stable order (by path)."""
    need = {ord(c) for c in chars}
    return [p for p in _font_files(chars) if need <= _codepoints(p)]


def render(char: str, font: Path, px: int = 256) -> np.ndarray:
    """`char` set in `font`: uint8 grayscale (px, px), black ink on white paper, the glyph centred."""
    face = ImageFont.truetype(str(font), int(px * 0.8))
    img = Image.new("L", (px, px), 255)
    ImageDraw.Draw(img).text((px / 2, px / 2), char, font=face, fill=0, anchor="mm")
    return np.asarray(img, dtype=np.uint8)


@lru_cache(maxsize=64)
def trace_forms(char: str) -> tuple[str, np.ndarray]:
    """Forms to trace for a character the data has no images of: its Unicode hentaigana, then the modern kana,
    each set in the first installed font that carries them all and framed like a drawing (uint8 (N, 28, 28),
    light ink on black, like training forms). Returns (what they are, the forms); none where no font has them.
    """
    from kmnist.classes import hentaigana
    from kmnist.preprocess import prepare
    letters = hentaigana(char) + char
    for chosen in (letters, char):  # the hentaigana need a font such as Hanazono Mincho; the kana alone, any
        font = next((p for p in _font_files(chosen) if {ord(c) for c in chosen} <= _codepoints(p)), None)
        if font is not None:
            return (f"{'its hentaigana and ' if len(chosen) > 1 else ''}the modern {char}, set in {font.stem}",
                    np.stack([prepare(render(c, font, px=128)) for c in chosen]))
    return "", np.zeros((0, 28, 28), np.uint8)
