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


def _font_files() -> list[Path]:
    """Every font file fontconfig knows, links resolved (empty where fontconfig is missing)."""
    try:
        out = subprocess.run(["fc-list", "--format", "%{file}\n"], capture_output=True, text=True, timeout=30,
                             check=True).stdout
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
    return [p for p in _font_files() if need <= _codepoints(p)]


def render(char: str, font: Path, px: int = 256) -> np.ndarray:
    """`char` set in `font`: uint8 grayscale (px, px), black ink on white paper, the glyph centred."""
    face = ImageFont.truetype(str(font), int(px * 0.8))
    img = Image.new("L", (px, px), 255)
    ImageDraw.Draw(img).text((px / 2, px / 2), char, font=face, fill=0, anchor="mm")
    return np.asarray(img, dtype=np.uint8)
