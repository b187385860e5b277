"""Where datasets live, what is present, and loading them as uint8 arrays with their class table."""
from __future__ import annotations

import gzip
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kmnist import KmnistError, classes as cls
from kmnist.download import DownloadError, Progress, UnreachableError, fetch, md5sum

CODH = "http://codh.rois.ac.jp/kmnist/dataset"
MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist"
SPLITS = ("train", "test")


@dataclass(frozen=True)
class RemoteFile:
    name: str  # file name, identical on the server and on disk
    md5: str  # published checksum
    role: str  # "train-imgs", "train-labels", "test-imgs", "test-labels" or "classmap"


@dataclass(frozen=True)
class OfficialDataset:
    name: str  # folder name under the data dir
    base_url: str  # where the files are published
    files: tuple[RemoteFile, ...]  # every published file
    title: str  # human name

    def file(self, role: str) -> RemoteFile | None:
        return next((f for f in self.files if f.role == role), None)


def _npz_release(name: str, md5s: dict[str, str], title: str) -> OfficialDataset:
    files = tuple(RemoteFile(f"{name}-{role}.npz", md5, role) for role, md5 in md5s.items() if role != "classmap")
    files += (RemoteFile(f"{name}_classmap.csv", md5s["classmap"], "classmap"),)
    return OfficialDataset(name, f"{CODH}/{name}", files, title)


OFFICIAL: dict[str, OfficialDataset] = {
    "k49": _npz_release("k49", {
        "train-imgs": "7ac088b20481cf51dcd01ceaab89d821", "train-labels": "44a8e1b893f81e63ff38d73cad420f7a",
        "test-imgs": "d352e201d846ce6b94f42c990966f374", "test-labels": "4da6f7a62e67a832d5eb1bd85c5ee448",
        "classmap": "f7d0d0391f68bdf0fe4cf160ceb85753"}, "Kuzushiji-49"),
    "kmnist": _npz_release("kmnist", {
        "train-imgs": "a183fbc01ed9a345513b145673d3d0bb", "train-labels": "b0e1d240e8afec72b50437fc3bc5908a",
        "test-imgs": "dace6de62ca8b90843cc45366337d02e", "test-labels": "3ae489a79983d0fe386152684e3b5412",
        "classmap": "899202f6e8dc29a321ac210a03d0f2f1"}, "Kuzushiji-MNIST"),
    "mnist": OfficialDataset("mnist", MNIST_URL, (
        RemoteFile("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873", "train-imgs"),
        RemoteFile("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432", "train-labels"),
        RemoteFile("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3", "test-imgs"),
        RemoteFile("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c", "test-labels"),
    ), "MNIST digits"),
}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class DataMissingError(KmnistError, FileNotFoundError):
    """Files a step needs are absent; the message says which, where, and how to supply them."""


class BadDataError(KmnistError, ValueError):
    """A dataset file is unreadable, or holds arrays of the wrong kind; the message names the file."""


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The data dir: an explicit path, else $KMNIST_DATA_DIR, else the per-user cache."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get("KMNIST_DATA_DIR"):
        return Path(os.environ["KMNIST_DATA_DIR"]).expanduser()
    return user_cache() / "data"


def user_cache() -> Path:
    """The per-user cache folder of kmnist (data, computed maps)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kmnist"


def spec(name: str) -> OfficialDataset:
    """The file list of a dataset: official ones by name, any other as a dataset folder."""
    if name in OFFICIAL:
        return OFFICIAL[name]
    if not NAME_RE.match(name):
        raise BadDataError(f"invalid dataset name {name!r}: use letters, digits, '.', '_' and '-'")
    roles = [f"{s}-{k}" for s in SPLITS for k in ("imgs", "labels")]
    files = tuple(RemoteFile(f"{name}-{r}.npz", "", r) for r in roles)
    return OfficialDataset(name, "", files + (RemoteFile(f"{name}_classmap.csv", "", "classmap"),), name)


@dataclass
class DatasetStatus:
    name: str  # dataset name, also its folder name
    title: str  # human name
    folder: Path  # where its files are expected
    present: list[str] = field(default_factory=list)  # files found
    missing: list[str] = field(default_factory=list)  # files not found
    official: bool = False  # downloadable from its publisher

    def has(self, role: str) -> bool:
        f = spec(self.name).file(role)
        return f is not None and f.name in self.present

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def trainable(self) -> bool:
        return all(self.has(r) for r in ("train-imgs", "train-labels", "test-imgs", "test-labels"))


def status(name: str, root: Path | None = None) -> DatasetStatus:
    root = data_dir(root)
    s = spec(name)
    folder = root / name
    st = DatasetStatus(name, s.title, folder, official=name in OFFICIAL)
    for f in s.files:
        (st.present if (folder / f.name).is_file() else st.missing).append(f.name)
    return st


def list_datasets(root: Path | None = None) -> list[DatasetStatus]:
    """The official datasets (present or not) and every dataset folder found under the data dir."""
    root = data_dir(root)
    names = list(OFFICIAL)
    if root.is_dir():
        for d in sorted(p for p in root.iterdir() if p.is_dir()):
            if d.name not in OFFICIAL and NAME_RE.match(d.name) and (d / f"{d.name}-train-labels.npz").is_file():
                names.append(d.name)
    return [status(n, root) for n in names]


def missing_message(st: DatasetStatus, needed: list[str]) -> str:
    how = (f"run `python -m kmnist download {st.name}`" if st.official
           else "copy the dataset folder there")
    return (f"Dataset {st.name!r} is missing {', '.join(needed)} in {st.folder}. "
            f"To supply them, {how}, or point --data-dir / KMNIST_DATA_DIR at a folder that holds {st.name}/.")


def _path(name: str, role: str, root: Path | None) -> Path:
    st = status(name, root)
    f = spec(name).file(role)
    if f is None:
        raise DataMissingError(f"Dataset {name!r} has no {role} file")
    if f.name not in st.present:
        raise DataMissingError(missing_message(st, [f.name]))
    return st.folder / f.name


def _read_idx(path: Path) -> np.ndarray:
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
        magic = int.from_bytes(data[:4], "big")
        ndim = magic & 0xFF
        if magic >> 8 != 0x08 or not 1 <= ndim <= 3:  # 0x08: unsigned bytes, the only type MNIST uses
            raise ValueError(f"magic number {magic:#x} is not an IDX file of unsigned bytes")
        shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
        return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)
    except (OSError, EOFError, ValueError) as e:  # gzip.BadGzipFile is an OSError
        raise BadDataError(f"{path} is not a readable gzipped IDX file ({e})") from None


NPZ_MAGIC = b"PK"  # an .npz is a zip archive of .npy files


def _read_npz(path: Path) -> np.ndarray:
    """arr_0 of an .npz, never unpickling anything; every way the file can be wrong is named."""
    with open(path, "rb") as f:
        head = f.read(2)
    if head != NPZ_MAGIC:
        kind = "is empty" if not head else "is not an .npz archive (a zip of arrays), e.g. text or a bare .npy"
        raise BadDataError(f"{path} {kind}; save arrays with numpy.savez or numpy.savez_compressed")
    try:
        with np.load(path, allow_pickle=False) as z:
            names = z.files
            if "arr_0" in names:
                return z["arr_0"]
    except (zipfile.BadZipFile, EOFError, OSError, zipfile.LargeZipFile) as e:
        raise BadDataError(f"{path} is a corrupt or truncated .npz archive ({e})") from None
    except ValueError as e:
        if "allow_pickle" not in str(e):  # a damaged array header or size
            raise BadDataError(f"{path} holds a damaged array ({e})") from None
        # Object arrays, refused as they must be; numpy's hint to allow pickles is unsafe advice, so not quoted.
        raise BadDataError(f"{path} holds Python objects, which could only be read by unpickling, and kmnist "
                           "never does that; store plain uint8 arrays") from None
    raise BadDataError(f"{path} holds no array 'arr_0' (it holds: {', '.join(names) or 'nothing'}); "
                       "save the array unnamed, as numpy.savez(file, array)")


def _read_array(path: Path) -> np.ndarray:
    return _read_idx(path) if path.name.endswith(".gz") else _read_npz(path)


def _as_uint8(array: np.ndarray, path: Path, what: str) -> np.ndarray:
    """uint8 as stored; integers within 0..255 converted exactly; anything else refused, never cast silently."""
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.integer) and (array.size == 0 or (array.min() >= 0 and array.max() <= 255)):
        return array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        hint = (" (values in 0..1: multiply by 255 and round first)" if array.size and array.max() <= 1.0 else "")
        raise BadDataError(f"{path} holds {what} as {array.dtype}; kmnist reads only uint8 0..255{hint}")
    raise BadDataError(f"{path} holds {what} as {array.dtype} that do not fit uint8 0..255")


def load_images(name: str, split: str, root: Path | None = None) -> np.ndarray:
    """uint8 images (N, 28, 28), 0 background, 255 ink."""
    path = _path(name, f"{split}-imgs", root)
    images = _read_array(path)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise BadDataError(f"{path}: images have shape {images.shape}, expected (N, 28, 28)")
    return _as_uint8(images, path, "images")


def load_labels(name: str, split: str, root: Path | None = None) -> np.ndarray:
    """uint8 labels (N,); available even when the images are not."""
    path = _path(name, f"{split}-labels", root)
    labels = _read_array(path)
    if labels.ndim != 1 and not (labels.ndim == 2 and labels.shape[1] == 1):
        raise BadDataError(f"{path}: labels have shape {labels.shape}, expected (N,)")
    return _as_uint8(labels, path, "labels").reshape(-1)


def load_classes(name: str, root: Path | None = None) -> list[cls.ClassInfo]:
    if name == "mnist":
        return cls.digit_classes()
    path = _path(name, "classmap", root)
    try:
        return cls.read_classmap(path)
    except (ValueError, KeyError, IndexError) as e:  # UnicodeDecodeError is a ValueError
        raise BadDataError(f"{path} is not a class map: {e}") from None


@dataclass
class Split:
    images: np.ndarray  # uint8 (N, 28, 28)
    labels: np.ndarray  # uint8 (N,)


@dataclass
class Dataset:
    name: str  # dataset name
    classes: list[cls.ClassInfo]  # class table
    train: Split  # training split (validation is carved from it)
    test: Split  # test split, for reporting only


def load(name: str, root: Path | None = None) -> Dataset:
    """A whole dataset, checked for consistent shapes and labels."""
    classes = load_classes(name, root)
    splits = {}
    for split in SPLITS:
        images, labels = load_images(name, split, root), load_labels(name, split, root)
        if len(images) != len(labels):
            raise BadDataError(f"{name} {split}: {len(images)} images but {len(labels)} labels")
        if len(labels) and labels.max() >= len(classes):
            raise BadDataError(f"{name} {split}: label {labels.max()} outside the {len(classes)} classes")
        splits[split] = Split(images, labels)
    return Dataset(name, classes, splits["train"], splits["test"])


def split_train_val(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded, per-class (stratified) split of training positions into train and validation."""
    rng = np.random.default_rng(seed)
    train_idx, val_idx = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_val = int(round(len(idx) * fraction))
        val_idx.append(idx[:n_val])
        train_idx.append(idx[n_val:])
    return np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(val_idx))


def class_counts(name: str, split: str = "train", root: Path | None = None) -> np.ndarray:
    """Images per class, from the labels alone."""
    return np.bincount(load_labels(name, split, root), minlength=len(load_classes(name, root)))


def download(name: str, root: Path | None = None, progress: Progress | None = None,
             source: OfficialDataset | None = None, timeout: float = 10.0) -> list[Path]:
    """Fetch the missing or corrupt files of an official dataset; report every failure at once."""
    source = source or OFFICIAL.get(name)
    if source is None:
        raise BadDataError(f"{name!r} is not an official dataset; choose one of {', '.join(OFFICIAL)}")
    folder = data_dir(root) / source.name
    fetched, errors = [], []
    for f in source.files:
        dest = folder / f.name
        if dest.is_file() and md5sum(dest) == f.md5:
            continue
        try:
            fetched.append(fetch(f"{source.base_url}/{f.name}", dest, f.md5, progress, timeout))
        except UnreachableError as e:
            errors.append(str(e))
            break  # offline: one failure says it all, so fail fast
        except (DownloadError, OSError) as e:  # e.g. a read-only data dir; all reported together below
            errors.append(str(e))
    if errors:
        missing = [f.name for f in source.files if not (folder / f.name).is_file()]
        raise DataMissingError(
            "Download failed: " + "; ".join(errors) + ". "
            + (f"Still missing in {folder}: {', '.join(missing)}. " if missing else "")
            + f"To supply them by hand, get them from {source.base_url}/ and place them in {folder}, "
            "or point --data-dir / KMNIST_DATA_DIR at a folder that holds them.")
    return fetched


# What each dataset in the data dir holds: sizes, classes, which images are there, what is missing.

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


def availability(st: DatasetStatus) -> str:
    """One word for a dataset: complete, partial (some files) or absent (none)."""
    if st.complete:
        return "complete"
    return "partial" if st.present else "absent"


def _size(name: str, split: str, st: DatasetStatus, root: Path) -> int | None:
    return len(load_labels(name, split, root)) if st.has(f"{split}-labels") else None


def summarise(st: DatasetStatus, root: Path | None = None) -> DatasetSummary:
    """The summary of one dataset; labels are read (they are small), images only checked for."""
    root = data_dir(root)
    n_classes = len(load_classes(st.name, root)) if st.name == "mnist" or st.has("classmap") else None
    return DatasetSummary(
        name=st.name, title=st.title, folder=st.folder, official=st.official, classes=n_classes,
        train_size=_size(st.name, "train", st, root), test_size=_size(st.name, "test", st, root),
        train_images=st.has("train-imgs"), test_images=st.has("test-imgs"), missing=list(st.missing),
        state=availability(st))


def summarise_all(root: Path | None = None) -> list[DatasetSummary]:
    """Every official dataset (present or not) and every dataset folder in the data dir."""
    return [summarise(st, root) for st in list_datasets(root)]


def table(summaries: list[DatasetSummary]) -> list[dict]:
    """Rows for a table on screen."""
    def images(s: DatasetSummary) -> str:
        have = [split for split, ok in (("train", s.train_images), ("test", s.test_images)) if ok]
        return " + ".join(have) if have else "none"

    return [{"dataset": s.name, "title": s.title, "state": s.state, "classes": s.classes,
             "train": s.train_size, "test": s.test_size, "images": images(s),
             "missing": "all files" if s.state == "absent" else ", ".join(s.missing) or "—"} for s in summaries]
