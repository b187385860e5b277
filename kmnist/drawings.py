"""Your own drawings as a dataset: every confirmed or corrected drawing, saved safely from any number of sessions.

The folder `DATA_DIR/NAME/` holds the official layout (`NAME-{train,test}-{imgs,labels}.npz`,
`NAME_classmap.csv`), so every page and command reads it like any dataset, plus `records/`: per drawing
its framed 28x28 PNG, its raw canvas PNG and a small JSON record. The records are the truth; the
official files are rebuilt from them under an exclusive lock after every change, and each file is
written atomically. Two sessions saving at once each write their own records (unique ids), then
rebuild in turn: the second rebuild holds both, so nothing is lost and nothing is doubled.
Every fifth drawing saved goes to the test split, held out to show whether a fine-tune helped.
"""
from __future__ import annotations

import fcntl
import io
import re
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

from kmnist import KmnistError, classes as cls, datasets, files
from kmnist.preprocess import SIZE, BadImageError, EmptyImageError, Framing, prepare, read_image

NAME = "my-drawings"  # the dataset folder the Draw page saves into
TEST_EVERY = 5  # every fifth drawing saved is held out (test split)
ID_RE = re.compile(r"^[0-9]{8}T[0-9]{12}-[0-9a-f]{8}$")


@dataclass
class Drawing:
    id: str  # unique id, in saving order: "20250101T120000123456-1a2b3c4d" (UTC, microseconds)
    char: str  # the character it shows (what the person confirmed or chose)
    label: int  # its index in the dataset's class map
    split: str  # "train" or "test"
    predicted: str  # what the model read when it was saved
    run: str  # the run that read it
    saved: str  # UTC time, ISO 8601


def folder(name: str = NAME, root: Path | None = None) -> Path:
    datasets.spec(name)  # refuses names that are not plain folder names
    return datasets.data_dir(root) / name


def _records(path: Path) -> Path:
    return path / "records"


@contextmanager
def _locked(path: Path, exclusive: bool):
    """Hold the folder's lock file: exclusive to change, shared to read a consistent state."""
    path.mkdir(parents=True, exist_ok=True)
    with open(path / ".lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _write(path: Path, data: bytes) -> None:
    with files.atomic_open(path, "wb") as f:
        f.write(data)


def _read_classmap(path: Path, name: str) -> list[cls.ClassInfo]:
    f = path / f"{name}_classmap.csv"
    return cls.read_classmap(f) if f.is_file() else []


def _classmap_with(table: list[cls.ClassInfo], char: str, run_classes: list[cls.ClassInfo]) -> list[cls.ClassInfo]:
    """The folder's class map, started from the active model's, with a character it lacks appended."""
    if not table:
        table = [cls.make_class(i, c.char) for i, c in enumerate(run_classes)]
    if char not in {c.char for c in table}:
        table = table + [cls.make_class(len(table), char)]
    return table


def save(image: np.ndarray, raw_png: bytes | None, char: str, predicted: str, run_id: str,
         run_classes: list[cls.ClassInfo], name: str = NAME, root: Path | None = None) -> Drawing:
    """Add one drawing: its framed 28x28 (uint8, dataset style), the raw canvas PNG and the character it shows."""
    image = np.asarray(image)
    if image.shape != (SIZE, SIZE):
        raise ValueError(f"a drawing is saved as its framed 28x28 image, not {image.shape}")
    path = folder(name, root)
    stamp = datetime.now(timezone.utc)
    drawing_id = f"{stamp:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"  # sorts in saving order
    with _locked(path, exclusive=True):
        records = _records(path)
        records.mkdir(exist_ok=True)
        table = _classmap_with(_read_classmap(path, name), char, run_classes)
        label = next(c.index for c in table if c.char == char)
        found = _list(path)
        split = "test" if len(found) % TEST_EVERY == TEST_EVERY - 1 else "train"
        drawing = Drawing(drawing_id, char, label, split, predicted, run_id, stamp.isoformat(timespec="seconds"))
        _write(records / f"{drawing_id}.png", _png(image))
        if raw_png:
            _write(records / f"{drawing_id}-raw.png", raw_png)
        files.write_json(records / f"{drawing_id}.json", asdict(drawing))  # last: a record is complete once listed
        _rebuild(path, name, table, sorted([*found, drawing], key=lambda d: d.id))  # in id order, as listed
    return drawing


def delete(drawing_id: str, name: str = NAME, root: Path | None = None) -> None:
    """Remove one drawing and rebuild the dataset files without it."""
    if not ID_RE.match(drawing_id):
        raise ValueError(f"invalid drawing id {drawing_id!r}")
    path = folder(name, root)
    with _locked(path, exclusive=True):
        records = _records(path)
        if not (records / f"{drawing_id}.json").is_file():
            raise LookupError(f"no drawing {drawing_id!r} in {path}")
        (records / f"{drawing_id}.json").unlink()  # first: without its record the drawing is gone
        for suffix in (".png", "-raw.png"):
            (records / f"{drawing_id}{suffix}").unlink(missing_ok=True)
        _rebuild(path, name, _read_classmap(path, name), _list(path))


def _list(path: Path) -> list[Drawing]:
    records = _records(path)
    if not records.is_dir():
        return []
    found = []
    for p in sorted(records.glob("*.json")):
        row = files.read_json(p)
        if isinstance(row, dict) and ID_RE.match(str(row.get("id", ""))):
            found.append(Drawing(**{k: row[k] for k in Drawing.__dataclass_fields__}))
    return found


def _rebuild(path: Path, name: str, table: list[cls.ClassInfo], found: list[Drawing]) -> None:
    """Write the official files from the records, `found` as listed (caller holds the exclusive lock)."""
    for split in datasets.SPLITS:
        part = [d for d in found if d.split == split]
        images = np.stack([image(d, name, path.parent) for d in part]) if part else np.zeros((0, SIZE, SIZE), np.uint8)
        labels = np.array([d.label for d in part], np.uint8)
        for kind, arr in (("imgs", images), ("labels", labels)):
            with files.atomic_open(path / f"{name}-{split}-{kind}.npz", "wb") as f:
                np.savez_compressed(f, arr)
    with files.atomic_open(path / f"{name}_classmap.csv") as f:
        f.write(cls.classmap_csv(table))


def drawings(name: str = NAME, root: Path | None = None) -> list[Drawing]:
    """Every saved drawing, oldest first."""
    path = folder(name, root)
    if not _records(path).is_dir():
        return []
    with _locked(path, exclusive=False):
        return _list(path)


def image(drawing: Drawing, name: str = NAME, root: Path | None = None) -> np.ndarray:
    """A drawing's framed 28x28 (uint8, light ink on black)."""
    with Image.open(_records(folder(name, root)) / f"{drawing.id}.png") as im:
        return np.asarray(im.convert("L"))


def raw_png(drawing: Drawing, name: str = NAME, root: Path | None = None) -> bytes | None:
    """The canvas picture as drawn, or None when only the framed image was saved."""
    p = _records(folder(name, root)) / f"{drawing.id}-raw.png"
    return p.read_bytes() if p.is_file() else None


def counts(found: list[Drawing]) -> dict[str, int]:
    """Drawings per character, in order of first appearance."""
    out: dict[str, int] = {}
    for d in found:
        out[d.char] = out.get(d.char, 0) + 1
    return out


@dataclass
class Labelled:
    images: np.ndarray  # uint8 (N, 28, 28)
    labels: np.ndarray  # int (N,) indices in the target class table
    split: np.ndarray  # str (N,) "train" or "test"
    skipped: int  # drawings of characters the class table lacks


def for_classes(table: list[cls.ClassInfo], name: str = NAME, root: Path | None = None) -> Labelled:
    """The drawings labelled in another class table (a model's), matched by character; others skipped."""
    index = {c.char: c.index for c in table}
    path = folder(name, root)
    if not _records(path).is_dir():
        return Labelled(np.zeros((0, SIZE, SIZE), np.uint8), np.zeros(0, np.int64), np.zeros(0, str), 0)
    with _locked(path, exclusive=False):
        found = _list(path)
        kept = [d for d in found if d.char in index]
        images = [image(d, name, root) for d in kept]
    return Labelled(np.stack(images) if images else np.zeros((0, SIZE, SIZE), np.uint8),
                    np.array([index[d.char] for d in kept], np.int64), np.array([d.split for d in kept]),
                    len(found) - len(kept))


# Pictures imported as drawings (`python -m kmnist drawings add`) and the counts `drawings list` shows.

class DrawingsError(KmnistError, ValueError):
    """Drawings that cannot be added: a character outside the 49, or pictures that cannot be read."""


def k49_char(char: str) -> str:
    """One of the 49 Kuzushiji-49 characters, given as itself or its romaji ("ゐ" or "wi"); else refused."""
    table = cls.k49_classes()
    for c in table:
        if char == c.char or char.lower() == c.romaji:
            return c.char
    raise DrawingsError(f"{char!r} is not one of the 49 Kuzushiji-49 characters: "
                        + " ".join(c.char for c in table))


def add_pictures(paths: list[Path], char: str, framing: Framing, run_id: str, run_classes: list[cls.ClassInfo],
                 name: str = NAME, root: Path | None = None) -> list[Drawing]:
    """Save pictures of one character as drawings, each framed as the canvas frames a drawing.

    All are read first: if any cannot be read (not an image, no ink, missing) none is saved, and the error
    names each. Each saved picture takes the held-out turn a drawing saved on the Draw page would.
    """
    char = k49_char(char)
    ready, failed = [], []
    for p in paths:
        try:
            gray = read_image(Path(p))
            ready.append((prepare(gray, framing), _png(np.round(gray * 255))))
        except (OSError, BadImageError, EmptyImageError) as e:
            failed.append(f"{p} ({getattr(e, 'strerror', None) or e})")
    if failed:
        raise DrawingsError(f"{len(failed)} of {len(paths)} pictures cannot be read, so none was saved: "
                            + "; ".join(failed))
    return [save(image, raw, char, "", run_id, run_classes, name, root) for image, raw in ready]


def split_counts(found: list[Drawing]) -> list[dict]:
    """Drawings per character and split, in K49 order (characters outside it after, as first saved)."""
    order = [c.char for c in cls.k49_classes()]
    chars = sorted(counts(found), key=lambda ch: order.index(ch) if ch in order else len(order))
    return [{"char": ch, "romaji": cls.reading(ch), **{split: sum(d.char == ch and d.split == split for d in found)
                                                        for split in datasets.SPLITS}} for ch in chars]
