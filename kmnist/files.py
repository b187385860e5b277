"""Files the package writes and reads back: atomic writes, JSON, and where the project lives.

Every file another process may read while it is being written (run files, the active pointer, maps,
downloads, benchmark results) goes through `atomic_open`, so a reader, a kill or a full disk never leaves
half a file under its final name.
"""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the project checkout: assets/, runs/ and app.py live here


@contextmanager
def atomic_path(path: Path, suffix: str = ""):
    """A temporary name beside `path`, for writers that want a file name (Keras wants one ending in .keras).

    When the block ends without an error the file is flushed to disk and renamed into place; otherwise it is
    removed and `path` is left as it was.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)  # the rename must not reach the disk before the bytes do
        finally:
            os.close(fd)
        os.chmod(tmp, 0o644)  # mkstemp makes files private; runs, maps and data are meant to be shared and read
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


@contextmanager
def atomic_open(path: Path, mode: str = "w", suffix: str = ""):
    """Write a file under a temporary name in its folder, flush it to disk and rename it into place."""
    with atomic_path(path, suffix) as tmp, open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
        yield f


def write_json(path: Path, data) -> None:
    """`data` as UTF-8 JSON, written atomically."""
    with atomic_open(path) as f:
        json.dump(data, f, ensure_ascii=False, indent=1)


def read_json(path: Path, default=None):
    """A JSON file's content, or `default` when the file is absent or not valid JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return default
