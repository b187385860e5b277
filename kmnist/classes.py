"""The class table: index, codepoint, character, a romaji reading and the source kanji (字母) of each class."""
from __future__ import annotations

import csv
import io
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path

# Hepburn readings of the 49 Kuzushiji-49 characters (ゝ repeats the previous kana).
ROMAJI = {
    "あ": "a", "い": "i", "う": "u", "え": "e", "お": "o",
    "か": "ka", "き": "ki", "く": "ku", "け": "ke", "こ": "ko",
    "さ": "sa", "し": "shi", "す": "su", "せ": "se", "そ": "so",
    "た": "ta", "ち": "chi", "つ": "tsu", "て": "te", "と": "to",
    "な": "na", "に": "ni", "ぬ": "nu", "ね": "ne", "の": "no",
    "は": "ha", "ひ": "hi", "ふ": "fu", "へ": "he", "ほ": "ho",
    "ま": "ma", "み": "mi", "む": "mu", "め": "me", "も": "mo",
    "や": "ya", "ゆ": "yu", "よ": "yo",
    "ら": "ra", "り": "ri", "る": "ru", "れ": "re", "ろ": "ro",
    "わ": "wa", "ゐ": "wi", "ゑ": "we", "を": "wo", "ん": "n",
    "ゝ": "iteration mark",
}
# The kanji each hiragana was simplified from (字母, jibo). ゝ, the iteration mark, has none. Kuzushiji also
# writes each sound with variant kana (hentaigana) from other kanji, so one class holds several shapes.
KANJI = dict(zip(
    "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわゐゑをん",
    "安以宇衣於加幾久計己左之寸世曽太知川天止奈仁奴祢乃波比不部保末美武女毛也由与良利留礼呂和為恵遠无"))
HENTAIGANA_NOTE = ("The 字母 (jibo) is the kanji a hiragana was simplified from. Kuzushiji also writes the same sound "
                   "with variant kana (hentaigana) simplified from other kanji, so several shapes map to one class.")
HENTAIGANA_BLOCK = (0x1B000, 0x1B11F)  # Kana Supplement and the start of Kana Extended-A: the hentaigana
# Unicode spells the hentaigana's sounds in Kunrei-shiki (SI, TI, TU, HU); the reading table above is Hepburn.
_KUNREI = {"shi": "si", "chi": "ti", "tsu": "tu", "fu": "hu", "n": "n"}
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@dataclass(frozen=True)
class ClassInfo:
    index: int  # label value in the label arrays
    codepoint: str  # Unicode codepoint as "U+3042"
    char: str  # the character itself
    romaji: str  # reading shown beside the character
    kanji: str = ""  # source kanji (字母) of a hiragana, "" for ゝ and non-kana

    def label(self) -> str:
        """The character, its reading and its source kanji, e.g. "あ a · 安"."""
        return f"{self.char} {self.romaji}" + (f" · {self.kanji}" if self.kanji else "")


def reading(char: str) -> str:
    """Romaji for a kana, the English name for a digit, else the character itself."""
    if char in ROMAJI:
        return ROMAJI[char]
    if len(char) == 1 and char.isdigit():
        return DIGITS[int(char)]
    return char


def make_class(index: int, char: str) -> ClassInfo:
    return ClassInfo(index, f"U+{ord(char):04X}", char, reading(char), KANJI.get(char, ""))


def k49_classes() -> list[ClassInfo]:
    """The 49 Kuzushiji-49 classes in label order."""
    return [make_class(i, c) for i, c in enumerate(ROMAJI)]


def extend(known: list[ClassInfo], chars: list[str]) -> list[ClassInfo]:
    """A class table with characters appended after its own, indices continuing (a grown run's table)."""
    return list(known) + [make_class(len(known) + i, ch) for i, ch in enumerate(chars)]


def with_all_49(known: list[ClassInfo]) -> list[ClassInfo]:
    """A class table followed by every other Kuzushiji-49 character, in K49 order."""
    have = {c.char for c in known}
    return extend(known, [c.char for c in k49_classes() if c.char not in have])


def digit_classes() -> list[ClassInfo]:
    """The ten MNIST digit classes."""
    return [make_class(i, str(i)) for i in range(10)]


def parse_classmap(text: str) -> list[ClassInfo]:
    """Parse an official `*_classmap.csv` (`index,codepoint,char`)."""
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    if not rows or not {"index", "codepoint", "char"} <= set(rows[0]):
        raise ValueError("a classmap needs the header 'index,codepoint,char'")
    classes = [ClassInfo(int(r["index"]), r["codepoint"], r["char"], reading(r["char"]), KANJI.get(r["char"], ""))
               for r in rows]
    if [c.index for c in classes] != list(range(len(classes))):
        raise ValueError("classmap indices must run 0..N-1 in order")
    return classes


def read_classmap(path: Path) -> list[ClassInfo]:
    return parse_classmap(Path(path).read_text(encoding="utf-8"))


def classmap_csv(classes: list[ClassInfo]) -> str:
    """The official classmap format, for writing fixtures and exports."""
    lines = ["index,codepoint,char"] + [f"{c.index},{c.codepoint},{c.char}" for c in classes]
    return "\n".join(lines) + "\n"


def to_json(classes: list[ClassInfo]) -> list[dict]:
    return [asdict(c) for c in classes]


def from_json(rows: list[dict]) -> list[ClassInfo]:
    # Runs saved before the kanji column get it from the character.
    return [ClassInfo(**({"kanji": KANJI.get(r["char"], "")} | r)) for r in rows]


def _sound(char: str) -> str:
    """The sound of a kana as Unicode's hentaigana names spell it ("SI" for し), "" for ゝ and non-kana."""
    romaji = ROMAJI.get(char, "")
    return "" if " " in romaji else _KUNREI.get(romaji, romaji).upper()


def hentaigana(char: str) -> str:
    """The Unicode hentaigana (U+1B002–1B11E) of a kana's sound, in code point order; "" for ゝ and non-kana.

    A letter named for several sounds ("HENTAIGANA LETTER N-MU-MO-1", from 无) counts for each of them.
    """
    sound = _sound(char)
    if not sound:
        return ""
    found = []
    for cp in range(HENTAIGANA_BLOCK[0], HENTAIGANA_BLOCK[1] + 1):
        name = unicodedata.name(chr(cp), "")
        if name.startswith("HENTAIGANA LETTER ") and sound in name.removeprefix("HENTAIGANA LETTER ").split("-"):
            found.append(chr(cp))
    return "".join(found)

