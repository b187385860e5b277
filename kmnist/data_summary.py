"""What each dataset in the data dir holds: sizes, classes, which images are there, what is missing."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kmnist import datasets


@dataclass
class DatasetSummary:
    name: str  # dataset name (folder name)
    title: str  # human name
    folder: Path  # where its files are expected
    official: bool  # downloadable from its publisher
    classes: int | None  # number of classes, None when the class table is absent
    train_size: int | None  # training labels, None when absent
    test_size: int | None  # test labels, None when absent
    train_images: bool  # the training image file is present
    test_images: bool  # the test image file is present
    missing: list[str]  # files not found
    state: str  # "complete", "partial" or "absent", see `availability`

    @property
    def has_labels(self) -> bool:
        return self.train_size is not None or self.test_size is not None


def availability(st: datasets.DatasetStatus) -> str:
    """One word for a dataset: complete, partial (some files) or absent (none)."""
    if st.complete:
        return "complete"
    return "partial" if st.present else "absent"


def _size(name: str, split: str, st: datasets.DatasetStatus, root: Path) -> int | None:
    return len(datasets.load_labels(name, split, root)) if st.has(f"{split}-labels") else None


def summarise(st: datasets.DatasetStatus, root: Path | None = None) -> DatasetSummary:
    """The summary of one dataset; labels are read (they are small), images only checked for."""
    root = datasets.data_dir(root)
    n_classes = len(datasets.load_classes(st.name, root)) if st.name == "mnist" or st.has("classmap") else None
    return DatasetSummary(
        name=st.name, title=st.title, folder=st.folder, official=st.official, classes=n_classes,
        train_size=_size(st.name, "train", st, root), test_size=_size(st.name, "test", st, root),
        train_images=st.has("train-imgs"), test_images=st.has("test-imgs"), missing=list(st.missing),
        state=availability(st))


def summarise_all(root: Path | None = None) -> list[DatasetSummary]:
    """Every official dataset (present or not) and every dataset folder in the data dir."""
    return [summarise(st, root) for st in datasets.list_datasets(root)]


def table(summaries: list[DatasetSummary]) -> list[dict]:
    """Rows for a table on screen."""
    def images(s: DatasetSummary) -> str:
        have = [split for split, ok in (("train", s.train_images), ("test", s.test_images)) if ok]
        return " + ".join(have) if have else "none"

    return [{"dataset": s.name, "title": s.title, "state": s.state, "classes": s.classes,
             "train": s.train_size, "test": s.test_size, "images": images(s),
             "missing": "all files" if s.state == "absent" else ", ".join(s.missing) or "—"} for s in summaries]
