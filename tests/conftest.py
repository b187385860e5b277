"""Seeded tiny fixtures: generated datasets, a private runs dir, and the real data when present."""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kmnist import classes as cls
from kmnist import runs

SEED_RUN = "kmnist6k-seed"  # shipped, test accuracy 86.1%, lower than the shipped default's
SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def real_data_dir() -> Path | None:
    """../shared/data beside the checkout, or $KMNIST_DATA_DIR if it holds kmnist6k."""
    for d in (os.environ.get("KMNIST_DATA_DIR"), SHARED):
        if d and (Path(d) / "kmnist6k" / "kmnist6k-train-imgs.npz").is_file():
            return Path(d)
    return None


@pytest.fixture(scope="session")  # session scope: module-scoped fixtures (an app server) can use it too
def shared_data() -> Path:
    d = real_data_dir()
    if d is None:
        pytest.skip("real data absent: ../shared/data (or KMNIST_DATA_DIR) with kmnist6k/ is not here")
    return d


def glyphs(labels: np.ndarray, num_classes: int, seed: int = 0) -> np.ndarray:
    """Learnable 28x28 uint8 images: each class is a distinct bar pattern, with noise and jitter."""
    rng = np.random.default_rng(seed)
    images = np.zeros((len(labels), 28, 28), np.float32)
    for i, y in enumerate(labels):
        row, col = 4 + (y % 7) * 3, 4 + (y // 7) * 3
        dy, dx = rng.integers(-1, 2, size=2)
        images[i, row + dy: row + dy + 3, 3:25] = 1.0
        images[i, 3:25, col + dx: col + dx + 3] = 1.0
    images += rng.normal(0, 0.1, images.shape)
    return (np.clip(images, 0, 1) * 255).astype(np.uint8)


def png(image: np.ndarray) -> bytes:
    """An image array as the bytes of a PNG file (what an upload or a saved drawing holds)."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def write_dataset(root: Path, name: str, num_classes: int, train_per_class: int, test_per_class: int,
                  seed: int = 0) -> Path:
    """A dataset folder in the official layout, filled with generated glyphs."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, n in (("train", train_per_class), ("test", test_per_class)):
        labels = rng.permutation(np.repeat(np.arange(num_classes), n)).astype(np.uint8)
        np.savez_compressed(folder / f"{name}-{split}-imgs.npz", glyphs(labels, num_classes, seed + len(split)))
        np.savez_compressed(folder / f"{name}-{split}-labels.npz", labels)
    table = cls.k49_classes()[:num_classes] if num_classes <= 49 else None
    (folder / f"{name}_classmap.csv").write_text(cls.classmap_csv(table), encoding="utf-8")
    return folder


@pytest.fixture
def data_dir(tmp_path) -> Path:
    """A data dir holding `tiny49` (49 classes, 12 train / 4 test per class) and `tiny10`."""
    root = tmp_path / "data"
    write_dataset(root, "tiny49", 49, 12, 4)
    write_dataset(root, "tiny10", 10, 30, 10, seed=1)
    return root


@pytest.fixture(autouse=True)
def runs_dir(tmp_path, monkeypatch) -> Path:
    """Every test writes runs and the active pointer into its own folder."""
    d = tmp_path / "runs"
    monkeypatch.setenv("KMNIST_RUNS_DIR", str(d))
    return d


@pytest.fixture(scope="session")
def drawable(shared_data):
    """(character, stroke plan): a real KMNIST test image the shipped default reads right when drawn with the
    mouse; chosen once per session (it renders and reads 200 images)."""
    from tests.test_browser import pick_drawable_test_image
    return pick_drawable_test_image(shared_data)


@pytest.fixture
def no_data(tmp_path, monkeypatch) -> Path:
    """An empty data dir: pages show what they can without any dataset."""
    empty = tmp_path / "empty-data"
    empty.mkdir()
    monkeypatch.setenv("KMNIST_DATA_DIR", str(empty))
    return empty


@pytest.fixture
def seed_run(runs_dir) -> runs.Run:
    """The shipped seed run, made the active model (tests then do not depend on the shipped default)."""
    return runs.set_active(SEED_RUN)
