"""The 49-character reference: the hentaigana of each sound, its table, the served font and the Characters page."""
from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np
import pytest
from fontTools.ttLib import TTFont

from kmnist import classes as cls, drawings, figures, runs

ROOT = Path(__file__).resolve().parent.parent
FONT = ROOT / "static" / "fonts" / "hentaigana.woff2"


def test_every_hentaigana_letter_belongs_to_the_sounds_it_is_named_for():
    table = {c.char: cls.hentaigana(c.char) for c in cls.k49_classes()}
    block = [chr(cp) for cp in range(0x1B002, 0x1B11F)]
    assert all(unicodedata.name(h).startswith("HENTAIGANA LETTER ") for h in block)
    assert set("".join(table.values())) == set(block), "every letter of the block belongs to some character"
    assert table["ゝ"] == "", "the iteration mark has no hentaigana"
    assert table["し"] and all("SI" in unicodedata.name(h) for h in table["し"]), "Kunrei SI is Hepburn shi"
    assert "\U0001B002" in table["あ"] and len(table["か"]) >= 10
    assert all(unicodedata.name(h).startswith("HENTAIGANA LETTER N-MU-MO") for h in table["ん"]), (
        "ん has only the letters it shares with む and も")
    assert all(len(v) >= 2 for c, v in table.items() if c != "ゝ"), {c: len(v) for c, v in table.items()}


def test_the_served_font_carries_the_whole_block_and_stays_small():
    assert FONT.is_file(), "static/fonts/hentaigana.woff2 is built by scripts/build_font.py"
    assert (FONT.parent / "LICENSE-hanazono.txt").is_file(), "the font's licence lies beside it"
    cmap = TTFont(FONT).getBestCmap()
    assert all(cp in cmap for cp in range(0x1B002, 0x1B11F)), "every hentaigana letter has a glyph"
    assert FONT.stat().st_size < 200_000, f"the subset should stay near 100 KB: {FONT.stat().st_size}"


def test_character_rows_join_forms_and_drawings_by_character():
    known = [cls.make_class(0, "お"), cls.make_class(1, "き")]

    class Forms:  # the part of tutor.Forms the rows use
        def of(self, label):
            return np.full((6, 28, 28), label, np.uint8)

    rows = figures.character_rows(known, Forms(), {"ゐ": 3, "お": 1})
    assert [r.info.char for r in rows] == [c.char for c in cls.k49_classes()]
    by = {r.info.char: r for r in rows}
    assert by["お"].known and len(by["お"].forms) == figures.REFERENCE_FORMS and by["お"].drawings == 1
    assert by["き"].forms[0, 0, 0] == 1, "forms come from the class's own index in the model's table"
    assert not by["ゐ"].known and len(by["ゐ"].forms) == 0 and by["ゐ"].drawings == 3
    page = figures.characters_html(rows)
    assert page.count("<tr data-char=") == 49 and "hentaigana.woff2" in page and "HENTAIGANA LETTER WI-1" in page


def test_the_characters_page_shows_all_49_and_one_characters_variants(runs_dir, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("KMNIST_DATA_DIR", str(tmp_path / "data"))
    run = runs.set_active("kmnist6k-seed")
    drawings.save(np.zeros((28, 28), np.uint8), None, "ゐ", "お", run.id, run.classes, root=tmp_path / "data")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.run()
    at.switch_page("pages/characters.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Characters"
    table = at.html[-1].value
    assert table.count("<tr data-char=") == 49
    assert '<tr data-char="ゐ"><td>44</td>' in table and "<td>1</td></tr>" in table, "the saved ゐ is counted"
    assert table.count("<img") == 10 * figures.REFERENCE_FORMS, "the 10 known characters show their forms"
    at.selectbox(key="characters_pick").select("ゐ").run()
    assert 'data-variants="ゐ"' in at.html[0].value and "WI-5" in at.html[0].value
    assert at.query_params["char"] == "ゐ", "the URL names the character (a deep link)"


def test_a_link_with_a_character_opens_its_variants(runs_dir, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("KMNIST_DATA_DIR", str(tmp_path / "data"))
    runs.set_active("kmnist6k-seed")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.run()
    at.query_params["char"] = "の"
    at.switch_page("pages/characters.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="characters_pick").value == "の"
    assert 'data-variants="の"' in at.html[0].value and "NO-5" in at.html[0].value
