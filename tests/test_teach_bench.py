"""benchmarks/teach.py: the reading hands' renders, and only they, land on the held-out turns."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from kmnist import drawings, glyphs, runs

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import teach  # noqa: E402


def test_reading_hands_are_held_out_and_learning_hands_are_learned_from(tmp_path, monkeypatch):
    made = []

    def render(char, font, px=128):  # a square whose place says which hand drew which character
        made.append((char, font.name))
        img = np.full((px, px), 255, np.uint8)
        y = 10 + (ord(char) % 7) * 12
        x = 10 + int(font.name[1:]) * 6
        img[y: y + 20, x: x + 20] = 0
        return img

    monkeypatch.setattr(glyphs, "render", render)
    base = runs.get_run("kmnist6k-seed")
    learn = [Path(f"/fonts/f{i}") for i in range(teach.LEARN_HANDS)]
    read = [Path(f"/fonts/f{i}") for i in range(teach.LEARN_HANDS, teach.LEARN_HANDS + teach.READ_HANDS)]
    teach.save_drawings(base, "ゐのた", learn, read, tmp_path)
    saved = drawings.drawings(teach.NAME, tmp_path)
    fonts = [font for _, font in made]
    assert len(saved) == len(made) == 75
    held = [f for d, f in zip(saved, fonts) if d.split == "test"]
    learned = [f for d, f in zip(saved, fonts) if d.split == "train"]
    assert sorted(set(held)) == sorted(f.name for f in read) and set(learned) == {f.name for f in learn}
    assert {d.char for d in saved if d.split == "test"} == set("ゐのた"), "only new characters are read"
    counts = drawings.counts([d for d in saved if d.split == "train"])
    assert all(counts[ch] == teach.LEARN_HANDS for ch in "ゐのた")
    assert sum(counts[c.char] for c in base.classes) == teach.LEARN_HANDS * teach.KNOWN_PER_HAND
