"""Rebuild static/fonts/hentaigana.woff2: the hentaigana block (U+1B000–1B11F) of Hanazono Mincho A, as WOFF2.

The Characters page shows the Unicode hentaigana in this font, served by the app itself (Streamlit static
serving, /app/static/fonts/...), because few systems carry the block. Source: Debian's fonts-hanazono
(HanaMinA.ttf, GlyphWiki Project), used under the Hanazono Font License (free to modify and redistribute; see
LICENSE-hanazono.txt beside the font). The subset is renamed, as a modified font should not carry the original
family name. Needs fontTools and brotli (requirements-dev.txt).

    python scripts/build_font.py [--source /usr/share/fonts/truetype/hanazono/HanaMinA.ttf]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

ROOT = Path(__file__).resolve().parent.parent
SOURCE = Path("/usr/share/fonts/truetype/hanazono/HanaMinA.ttf")
OUT = ROOT / "static" / "fonts" / "hentaigana.woff2"
FAMILY = "Kmnist Hentaigana"  # the name the pages use in CSS
BLOCK = range(0x1B000, 0x1B120)


def build(source: Path = SOURCE, out: Path = OUT) -> int:
    """Write the subset; returns its size in bytes."""
    font = TTFont(source)
    options = subset.Options()
    options.flavor = "woff2"
    options.layout_features = []  # plain glyphs: no shaping needed for single letters
    options.name_IDs = []  # drop every name; the new ones are set below
    options.notdef_outline = True
    sub = subset.Subsetter(options)
    sub.populate(unicodes=[cp for cp in BLOCK if cp in font.getBestCmap()])
    sub.subset(font)
    names = font["name"]
    for name_id, text in ((1, FAMILY), (2, "Regular"), (3, f"{FAMILY}; subset of HanaMinA"), (4, FAMILY),
                          (6, FAMILY.replace(" ", "")),
                          (0, "Copyright 2008-2011 GlyphWiki Project. Hanazono Font License.")):
        names.setName(text, name_id, 3, 1, 0x409)
    out.parent.mkdir(parents=True, exist_ok=True)
    font.flavor = "woff2"
    font.save(out)
    return out.stat().st_size


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", type=Path, default=SOURCE, help="HanaMinA.ttf (default: %(default)s)")
    p.add_argument("--out", type=Path, default=OUT, help="WOFF2 file (default: %(default)s)")
    args = p.parse_args()
    print(f"{args.out}: {build(args.source, args.out) / 1e3:.0f} KB")
