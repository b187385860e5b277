"""Loading datasets: generated folders, IDX files, partial availability, and the real data when present."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

from kmnist import classes as cls
from kmnist import datasets


def test_dataset_folders_are_found_and_load(data_dir):
    names = [s.name for s in datasets.list_datasets(data_dir)]
    assert {"k49", "kmnist", "mnist", "tiny49", "tiny10"} <= set(names)
    ds = datasets.load("tiny49", data_dir)
    assert ds.train.images.dtype == np.uint8 and ds.train.images.shape == (49 * 12, 28, 28)
    assert ds.test.labels.shape == (49 * 4,) and len(ds.classes) == 49
    assert ds.classes[48].char == "ゝ" and ds.classes[48].romaji == "iteration mark"


def test_data_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("KMNIST_DATA_DIR", str(tmp_path / "env"))
    assert datasets.data_dir(tmp_path / "flag") == tmp_path / "flag"
    assert datasets.data_dir() == tmp_path / "env"
    monkeypatch.delenv("KMNIST_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert datasets.data_dir() == tmp_path / "cache" / "kmnist" / "data"


def test_missing_images_say_what_where_and_how(data_dir):
    (data_dir / "tiny10" / "tiny10-train-imgs.npz").unlink()
    st = datasets.status("tiny10", data_dir)
    assert not st.trainable and st.missing == ["tiny10-train-imgs.npz"]
    with pytest.raises(datasets.DataMissingError) as err:
        datasets.load("tiny10", data_dir)
    assert "tiny10-train-imgs.npz" in str(err.value) and str(data_dir / "tiny10") in str(err.value)
    counts = datasets.class_counts("tiny10", "train", data_dir)
    assert counts.tolist() == [30] * 10, "labels alone should still give per-class counts"


def test_official_missing_suggests_download(tmp_path):
    with pytest.raises(datasets.DataMissingError, match="python -m kmnist download k49"):
        datasets.load_images("k49", "train", tmp_path)


def test_mnist_idx_files(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    images = np.arange(3 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(3, 28, 28)
    header = (2051).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in (3, 28, 28))
    for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        with gzip.open(folder / name, "wb") as f:
            f.write(header + images.tobytes())
    for name in ("train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        with gzip.open(folder / name, "wb") as f:
            f.write((2049).to_bytes(4, "big") + (3).to_bytes(4, "big") + bytes([7, 1, 9]))
    ds = datasets.load("mnist", tmp_path)
    assert np.array_equal(ds.train.images, images) and ds.test.labels.tolist() == [7, 1, 9]
    assert [c.char for c in ds.classes] == [str(i) for i in range(10)]


def test_invalid_dataset_names_are_refused(tmp_path):
    with pytest.raises(ValueError, match="invalid dataset name"):
        datasets.status("../etc", tmp_path)


def test_classmap_parsing():
    table = cls.k49_classes()
    assert cls.parse_classmap(cls.classmap_csv(table)) == table
    with pytest.raises(ValueError, match="header"):
        cls.parse_classmap("a,b\n1,2\n")


def test_real_data(shared_data):
    ds = datasets.load("kmnist6k", shared_data)
    assert ds.train.images.shape == (6000, 28, 28) and ds.test.images.shape == (10000, 28, 28)
    assert "".join(c.char for c in ds.classes) == "おきすつなはまやれを"
    counts = datasets.class_counts("k49", "train", shared_data)
    assert len(counts) == 49 and counts.sum() == 232365
    assert counts.max() == 6000 and counts.min() < 1000, "K49 is imbalanced: ~6,000 down to <1,000 per class"
    assert [c.char for c in datasets.load_classes("k49", shared_data)] == [c.char for c in cls.k49_classes()]
    status = datasets.status("k49", shared_data)
    assert status.has("train-labels") and not status.has("train-imgs")


def test_summaries_of_present_partial_and_absent_datasets(data_dir):
    (data_dir / "tiny10" / "tiny10-train-imgs.npz").unlink()
    found = {s.name: s for s in datasets.summarise_all(data_dir)}
    tiny49, tiny10, k49 = found["tiny49"], found["tiny10"], found["k49"]
    assert (tiny49.state, tiny49.classes, tiny49.train_size, tiny49.test_size) == ("complete", 49, 49 * 12, 49 * 4)
    assert (tiny10.state, tiny10.train_images, tiny10.test_images) == ("partial", False, True)
    assert tiny10.train_size == 300, "sizes come from the labels, with or without images"
    assert (k49.state, k49.has_labels, k49.classes) == ("absent", False, None)
    rows = {r["dataset"]: r for r in datasets.table(list(found.values()))}
    assert rows["tiny10"]["images"] == "test" and rows["tiny10"]["missing"] == "tiny10-train-imgs.npz"
    assert rows["tiny49"]["images"] == "train + test" and rows["tiny49"]["missing"] == "—"
    assert rows["k49"]["missing"] == "all files"
