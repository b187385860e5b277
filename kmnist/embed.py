"""UMAP maps of dataset images: sample, vectorise (pixels or a run's features), PCA, UMAP, cache on disk.

A map file holds only coordinates, the sample's positions in the dataset's arrays and the parameters,
never images or labels: colours and thumbnails are looked up in the data when it is present.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from kmnist import KmnistError, datasets, files, runs

SHIPPED = files.ROOT / "assets" / "embeddings"  # maps committed with the project, so the page opens at once
SPACES = ("pixels", "features")
KUZUSHIJI = ("k49", "kmnist", "kmnist6k")  # Kuzushiji datasets, most complete first
FORMAT = 1  # bump when the file layout changes; old cache files are then ignored

Progress = Callable[[str, float], None]  # (stage description, fraction done 0..1)
# Share of the work done when UMAP's layout epochs start: measured on 16,000 kmnist6k points, the PCA and the
# neighbour graph (with the first run's kernel compiling) took 194 s of 208, the 200 layout epochs 13 s.
EPOCHS_FROM = 0.9
# Seconds per mapped point when no stored map tells better: the median of the five shipped maps, on 2 cores.
SECONDS_PER_POINT = 0.0024


class EmbedError(KmnistError, ValueError):
    """Map parameters that do not make a map."""


@dataclass(frozen=True)
class EmbedConfig:
    dataset: str = "kmnist6k"  # dataset whose images are mapped
    space: str = "pixels"  # "pixels" (raw images) or "features" (a run's penultimate layer)
    run_id: str = ""  # run whose features are mapped; only with space "features"
    sample: int = 16000  # at most this many points on the map
    splits: tuple[str, ...] = ()  # splits sampled, in order; () = train, plus test when train alone is smaller
    pca: int = 50  # PCA components UMAP sees; 0 = none. Denoises and speeds up the neighbour search
    n_neighbors: int = 15  # UMAP neighbourhood size: larger keeps more of the global structure
    min_dist: float = 0.1  # UMAP minimum spacing of points on the map: smaller packs clusters tighter
    seed: int = 0  # seeds the sample, PCA and UMAP

    def __post_init__(self):
        if self.space not in SPACES:
            raise EmbedError(f"unknown space {self.space!r}; choose one of {', '.join(SPACES)}")
        if (self.space == "features") != bool(self.run_id):
            raise EmbedError("a run id is needed for space 'features', and only there")
        if self.run_id:
            runs.validate_run_id(self.run_id)  # it becomes part of a file name
        if self.sample < 2:
            raise EmbedError("a map needs at least 2 points")

    def key(self) -> str:
        """File name stem: readable, plus a hash of every parameter."""
        digest = hashlib.sha256(json.dumps([FORMAT, asdict(self)], sort_keys=True).encode()).hexdigest()[:10]
        return "-".join(p for p in (self.dataset, self.space, self.run_id, digest) if p)


@dataclass
class Embedding:
    config: EmbedConfig  # parameters it was computed with
    coords: np.ndarray  # float32 (N, 2) map positions
    indices: np.ndarray  # int64 (N,) positions in the sampled splits' arrays laid end to end
    sizes: tuple[int, ...]  # images per sampled split when computed (the indices refer to these)
    splits: tuple[str, ...]  # the splits sampled (config.splits resolved)
    seconds: float  # time it took to compute
    source: Path | None = None  # file it was read from, None when just computed

    def split_of(self) -> tuple[np.ndarray, np.ndarray]:
        """For each point: index into `splits` and position within that split."""
        bounds = np.cumsum((0,) + tuple(self.sizes))
        which = np.searchsorted(bounds, self.indices, side="right") - 1
        return which, self.indices - bounds[which]


def cache_dir() -> Path:
    """Where computed maps are kept: $KMNIST_CACHE_DIR/embeddings, else the per-user cache."""
    return Path(os.environ.get("KMNIST_CACHE_DIR") or datasets.user_cache()).expanduser() / "embeddings"


def kuzushiji_dataset(root: Path | None = None) -> str:
    """The Kuzushiji dataset to map: the most complete one with training images, else kmnist6k."""
    for name in KUZUSHIJI:
        if datasets.status(name, root).has("train-imgs"):
            return name
    return KUZUSHIJI[-1]


def split_sizes(dataset: str, root: Path | None = None) -> dict[str, int]:
    """Images per split, from the label files (cheap); splits without labels are left out."""
    found = {}
    for split in datasets.SPLITS:
        try:
            found[split] = len(datasets.load_labels(dataset, split, root))
        except datasets.DataMissingError:
            pass
    return found


def resolve_splits(config: EmbedConfig, sizes: dict[str, int]) -> tuple[str, ...]:
    # kmnist6k has only 6,000 training images, so its map takes the test images too to reach the sample size.
    if config.splits:
        return config.splits
    if sizes.get("train", 0) >= config.sample or "test" not in sizes:
        return ("train",)
    return ("train", "test")


def sample_indices(total: int, n: int, seed: int) -> np.ndarray:
    """A seeded sample of n positions out of total, in ascending order (all of them when n >= total)."""
    if n >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, n, replace=False))


def take(emb: Embedding, per_split: Sequence[np.ndarray]) -> np.ndarray:
    """The mapped points' rows (images or labels) out of the sampled splits' arrays, in map order."""
    return np.concatenate(per_split)[emb.indices]


def _load(emb: Embedding, loader, root: Path | None) -> np.ndarray | None:
    try:
        return take(emb, [loader(emb.config.dataset, s, root) for s in emb.splits])
    except datasets.DataMissingError:
        return None


def images(emb: Embedding, root: Path | None = None) -> np.ndarray | None:
    """The mapped images (N, 28, 28) uint8, or None when the data is not here."""
    return _load(emb, datasets.load_images, root)


def labels(emb: Embedding, root: Path | None = None) -> np.ndarray | None:
    """The true class of every point, or None when the labels are not here."""
    return _load(emb, datasets.load_labels, root)


def vectors(images: np.ndarray, space: str = "pixels", model=None, batch_size: int = 512) -> np.ndarray:
    """What the map is made of: pixels scaled to 0..1, or the model's penultimate features."""
    if space == "pixels":
        return images.reshape(len(images), -1).astype(np.float32) / 255.0
    from kmnist.models import feature_model
    from kmnist.preprocess import to_input
    return np.asarray(feature_model(model).predict(to_input(images), batch_size=batch_size, verbose=0),
                      dtype=np.float32)


def compute(config: EmbedConfig, root: Path | None = None, progress: Progress | None = None,
            model=None) -> Embedding:
    """Sample, vectorise, reduce with PCA, lay out with seeded UMAP (slow: about a minute for 16,000 points)."""
    report = progress or (lambda stage, done: None)
    started = time.time()
    report("reading images", 0.0)
    sizes = split_sizes(config.dataset, root)
    splits = resolve_splits(config, sizes)
    total = sum(sizes.get(s, 0) for s in splits)
    indices = sample_indices(total, config.sample, config.seed)
    imgs = np.concatenate([datasets.load_images(config.dataset, s, root) for s in splits])[indices]
    if config.space == "features":
        report(f"features of run {config.run_id}", 0.02)
        model = model or runs.get_run(config.run_id).load_model()
    x = vectors(imgs, config.space, model)
    if config.pca and config.pca < min(x.shape):
        report(f"PCA to {config.pca} components", 0.05)
        from sklearn.decomposition import PCA
        x = PCA(config.pca, random_state=config.seed).fit_transform(x)
    report(f"UMAP of {len(x):,} points: neighbour graph", 0.15)
    import umap  # deferred: importing it costs seconds (it loads TensorFlow for its parametric variant)
    # UMAP reports only its layout epochs, through a tqdm bar; tqdm_kwds is its public hook for that bar.
    epochs = EpochSink(lambda n, total: report(f"UMAP of {len(x):,} points: layout epoch {n}/{total}",
                                               EPOCHS_FROM + (1 - EPOCHS_FROM) * n / total))
    layout = umap.UMAP(n_neighbors=min(config.n_neighbors, len(x) - 1), min_dist=config.min_dist,
                       random_state=config.seed, n_jobs=1,  # seeded UMAP runs single-threaded anyway
                       tqdm_kwds=dict(disable=False, file=epochs, bar_format="{n}/{total}", mininterval=0.5))
    coords = layout.fit_transform(x).astype(np.float32)
    report("done", 1.0)
    return Embedding(config, coords, indices, tuple(sizes[s] for s in splits), splits, time.time() - started)


class EpochSink:
    """A file for tqdm to write its bar to, read back as (epochs done, epochs in all)."""

    def __init__(self, report: Callable[[int, int], None]):
        self.report = report

    def write(self, text: str) -> None:
        found = re.findall(r"(\d+)/(\d+)", text)
        if found and int(found[-1][1]):
            self.report(*map(int, found[-1]))

    def flush(self) -> None:
        pass


def _seconds_per_point(path: Path) -> float:
    """How long a stored map took per point, from its metadata and the header of its index array (the count),
    so no coordinates or indices are unpacked."""
    with np.load(path) as z, z.zip.open("indices.npy") as f:
        version = np.lib.format.read_magic(f)
        header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        (points,), _, _ = header(f)
        return json.loads(str(z["meta"]))["seconds"] / max(points, 1)


def estimate_seconds(config: EmbedConfig, root: Path | None = None) -> tuple[float, str]:
    """How long computing this map should take, and what the estimate rests on.

    The median seconds per point of the stored maps of the same space (each records its own time), else
    SECONDS_PER_POINT. An estimate: the first map in a process also compiles UMAP's kernels, and the
    machine may be busier than when those maps were made.
    """
    sizes = split_sizes(config.dataset, root)
    points = min(config.sample, sum(sizes.get(s, 0) for s in resolve_splits(config, sizes)))
    rates = []
    for folder in (cache_dir(), SHIPPED):
        for path in folder.glob(f"*-{config.space}-*.npz"):
            try:
                rates.append(_seconds_per_point(path))
            except (OSError, ValueError, KeyError):
                continue  # an unreadable map says nothing about speed
    if rates:
        rate, basis = float(np.median(rates)), f"{len(rates)} earlier {config.space} map" + "s" * (len(rates) > 1)
    else:
        rate, basis = SECONDS_PER_POINT, "a rate measured on 2 cores"
    return rate * points, f"estimated from {basis} at {rate * 1000:.1f} ms per point, for {points:,} points"


def save(emb: Embedding, folder: Path) -> Path:
    """Write a map file (float16 coordinates keep shipped files small); atomic, so readers never see half."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{emb.config.key()}.npz"
    meta = {"format": FORMAT, "config": asdict(emb.config), "sizes": list(emb.sizes), "splits": list(emb.splits),
            "seconds": emb.seconds}
    index_type = np.uint16 if emb.indices.max(initial=0) < 2**16 else np.uint32
    with files.atomic_open(path, "wb") as f:
        np.savez_compressed(f, coords=emb.coords.astype(np.float16), indices=emb.indices.astype(index_type),
                            meta=np.array(json.dumps(meta)))
    return path


def read(path: Path) -> Embedding:
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        coords, indices = z["coords"].astype(np.float32), z["indices"].astype(np.int64)
    config = meta["config"] | {"splits": tuple(meta["config"]["splits"])}
    return Embedding(EmbedConfig(**config), coords, indices, tuple(meta["sizes"]), tuple(meta["splits"]),
                     meta["seconds"], Path(path))


def find(config: EmbedConfig, root: Path | None = None) -> Embedding | None:
    """A stored map for these parameters (cache first, then shipped) that still fits the data here."""
    sizes = split_sizes(config.dataset, root)
    for folder in (cache_dir(), SHIPPED):
        path = folder / f"{config.key()}.npz"
        if not path.is_file():
            continue
        emb = read(path)
        # Data of another size (say the full K49 arriving later) makes the stored positions meaningless.
        if all(s in sizes for s in emb.splits) and tuple(sizes[s] for s in emb.splits) != emb.sizes:
            continue
        return emb
    return None


def get(config: EmbedConfig, root: Path | None = None, progress: Progress | None = None,
        force: bool = False, model=None) -> Embedding:
    """The stored map, else compute it and keep it in the cache dir."""
    emb = None if force else find(config, root)
    if emb is None:
        emb = compute(config, root, progress, model)
        emb.source = save(emb, cache_dir())
    return emb


def place(points: np.ndarray, coords: np.ndarray, new: np.ndarray, k: int = 10) -> np.ndarray:
    """Map positions (M, 2) for new vectors: the inverse-distance-weighted mean of their k nearest points.

    `points` are the mapped vectors (N, D) in the same space as `new` (M, D); a new vector equal to a
    mapped one lands exactly on it.
    """
    # float64: in float32 the expanded squared distance of a vector to itself is noise, not zero.
    new, points = np.atleast_2d(new).astype(np.float64), np.asarray(points, dtype=np.float64)
    d2 = ((new ** 2).sum(1)[:, None] - 2 * new @ points.T + (points ** 2).sum(1)[None, :]).clip(min=0)
    k = min(k, len(points))
    near = np.argpartition(d2, k - 1, axis=1)[:, :k]
    dist = np.sqrt(np.take_along_axis(d2, near, axis=1))
    weights = 1.0 / np.maximum(dist, 1e-6)
    weights /= weights.sum(1, keepdims=True)
    return (weights[:, :, None] * coords[near]).sum(1)



def describe(emb: Embedding) -> str:
    """Which images the map shows, in a sentence."""
    n, total = len(emb.indices), sum(emb.sizes)
    parts = " and ".join(f"{size:,} {split}" for split, size in zip(emb.splits, emb.sizes))
    if n == total:
        what = f"all {parts} images of {emb.config.dataset}"
    else:
        what = f"a seeded sample of {n:,} out of the {parts} images of {emb.config.dataset}"
    why = (f" (its {emb.sizes[0]:,} training images alone are fewer than {emb.config.sample:,})"
           if len(emb.splits) > 1 and not emb.config.splits else "")
    space = "raw pixels" if emb.config.space == "pixels" else f"features of run {emb.config.run_id}"
    pca = f", PCA to {emb.config.pca} dimensions first" if emb.config.pca else ""
    return (f"{n:,} points: {what}{why}. UMAP of {space}{pca}; "
            f"n_neighbors {emb.config.n_neighbors}, min_dist {emb.config.min_dist}, seed {emb.config.seed}.")
