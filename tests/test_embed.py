"""UMAP maps: sampling, caching, seeded layouts, placing a new image, shipped maps that hold no data."""
from __future__ import annotations

import json

import numpy as np
import pytest

from kmnist import datasets, embed, models
from kmnist.cli import main
from tests.conftest import glyphs

TINY = embed.EmbedConfig(dataset="tiny10", sample=200, pca=10)
# UMAP compiles its numba kernels on first use in a process, ~20 s of CPU: the tests that lay out a map are slow.
UMAP = pytest.mark.slow


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("KMNIST_CACHE_DIR", str(d))
    return d / "embeddings"


def fake_map(config: embed.EmbedConfig, sizes: tuple[int, ...], splits=("train",)) -> embed.Embedding:
    n = min(config.sample, sum(sizes))
    return embed.Embedding(config, np.random.default_rng(0).normal(size=(n, 2)).astype(np.float32),
                           embed.sample_indices(sum(sizes), n, 0), sizes, splits, 0.0)


@UMAP
def test_map_shapes_and_cache_hit(data_dir, cache_dir, monkeypatch):
    reports = []
    emb = embed.get(TINY, data_dir, progress=lambda stage, done: reports.append((stage, done)))
    epochs = [(stage, done) for stage, done in reports if "layout epoch" in stage]
    last = epochs[-1][0].rsplit(" ", 1)[-1] if epochs else ""
    assert len(epochs) >= 2 and last.split("/")[0] == last.split("/")[1], f"UMAP's epochs are reported: {reports}"
    shares = [done for _, done in reports]
    assert shares == sorted(shares) and shares[-1] == 1.0, "progress only moves forward, to the end"
    assert emb.coords.shape == (200, 2) and np.isfinite(emb.coords).all()
    assert emb.splits == ("train",), "300 training images are enough for 200 points"
    assert len(np.unique(emb.indices)) == 200 and emb.indices.max() < 300
    assert emb.source.parent == cache_dir and emb.source.is_file()

    def no_compute(*args, **kwargs):
        raise AssertionError("a stored map must not be recomputed")

    monkeypatch.setattr(embed, "compute", no_compute)
    again = embed.get(TINY, data_dir)
    assert np.array_equal(again.indices, emb.indices)
    assert np.allclose(again.coords, emb.coords, atol=0.02), "float16 storage keeps the layout"
    labels = embed.labels(again, data_dir)
    assert np.array_equal(labels, datasets.load_labels("tiny10", "train", data_dir)[emb.indices])


def test_umap_epoch_bar_is_read_back_as_epochs():
    seen = []
    sink = embed.EpochSink(lambda n, total: seen.append((n, total)))
    for text in ("\r0/200", "\r57/200", "", "\n"):  # what tqdm writes with bar_format "{n}/{total}"
        sink.write(text)
    assert seen == [(0, 200), (57, 200)]


def test_estimate_uses_the_time_stored_maps_took_else_a_measured_rate(data_dir, cache_dir, monkeypatch):
    monkeypatch.setattr(embed, "SHIPPED", data_dir / "no-shipped-maps")
    seconds, basis = embed.estimate_seconds(TINY, data_dir)
    assert seconds == pytest.approx(200 * embed.SECONDS_PER_POINT) and "rate measured" in basis
    for taken, seed in ((2.0, 1), (4.0, 2), (30.0, 3)):  # 10, 20 and 150 ms per point
        done = fake_map(embed.EmbedConfig(dataset="tiny10", sample=200, seed=seed), (300,))
        done.seconds = taken
        embed.save(done, cache_dir)
    seconds, basis = embed.estimate_seconds(embed.EmbedConfig(dataset="tiny10", sample=100), data_dir)
    assert seconds == pytest.approx(100 * 0.020), "the median rate of the stored maps, for the points asked"
    assert "3 earlier pixels maps at 20.0 ms per point, for 100 points" in basis
    other_space, _ = embed.estimate_seconds(embed.EmbedConfig(dataset="tiny10", space="features", run_id="r"),
                                            data_dir)
    assert other_space == pytest.approx(400 * embed.SECONDS_PER_POINT), "pixel maps say nothing of feature maps"


@UMAP
def test_seeded_layout_is_reproducible(data_dir):
    a = embed.compute(TINY, data_dir)
    b = embed.compute(TINY, data_dir)
    assert np.array_equal(a.coords, b.coords), "the same seed gives the same map"
    c = embed.compute(embed.EmbedConfig(dataset="tiny10", sample=200, pca=10, seed=1), data_dir)
    assert not np.array_equal(a.indices, c.indices), "another seed draws another sample"


@UMAP
def test_new_image_lands_among_its_class(data_dir):
    emb = embed.compute(TINY, data_dir)
    imgs, labels = embed.images(emb, data_dir), embed.labels(emb, data_dir)
    points = embed.vectors(imgs)
    assert np.allclose(embed.place(points, emb.coords, points[:3]), emb.coords[:3], atol=1e-3), \
        "a mapped image lands on itself"
    centres = np.array([emb.coords[labels == c].mean(0) for c in range(10)])
    new_labels = np.arange(10, dtype=np.uint8)
    placed = embed.place(points, emb.coords, embed.vectors(glyphs(new_labels, 10, seed=99)))
    nearest = np.linalg.norm(placed[:, None] - centres[None], axis=2).argmin(1)
    assert (nearest == new_labels).mean() >= 0.8, f"new glyphs should land by their class: {nearest}"


def test_auto_splits_and_point_origin():
    config = embed.EmbedConfig(sample=16000)
    assert embed.resolve_splits(config, {"train": 6000, "test": 10000}) == ("train", "test"), \
        "kmnist6k's 6,000 training images are topped up with its test images"
    assert embed.resolve_splits(config, {"train": 60000, "test": 10000}) == ("train",)
    emb = fake_map(config, (6000, 10000), ("train", "test"))
    emb.indices = np.array([0, 5999, 6000, 15999])
    which, pos = emb.split_of()
    assert which.tolist() == [0, 0, 1, 1] and pos.tolist() == [0, 5999, 0, 9999]


def test_stale_map_is_ignored_and_missing_data_still_reads(data_dir, cache_dir, tmp_path):
    embed.save(fake_map(TINY, (999,)), cache_dir)
    assert embed.find(TINY, data_dir) is None, "a map of data of another size is not reused"
    embed.save(fake_map(TINY, (300,)), cache_dir)
    assert embed.find(TINY, data_dir) is not None
    empty = tmp_path / "no-data"
    found = embed.find(TINY, empty)
    assert found is not None, "without data the stored map is still drawn"
    assert embed.labels(found, empty) is None and embed.images(found, empty) is None


def test_features_and_config_checks(data_dir):
    imgs = datasets.load_images("tiny10", "test", data_dir)[:8]
    feats = embed.vectors(imgs, "features", models.build("seed", 10))
    assert feats.shape == (8, 256), "the seed network's 'features' layer has 256 units"
    with pytest.raises(ValueError, match="run id"):
        embed.EmbedConfig(space="features")
    with pytest.raises(ValueError, match="space"):
        embed.EmbedConfig(space="colour")
    assert embed.EmbedConfig(seed=1).key() != embed.EmbedConfig(seed=2).key()


@UMAP
def test_cli_embed_json(data_dir, cache_dir, tmp_path, capsys):
    out = tmp_path / "ship"
    code = main(["embed", "--dataset", "tiny10", "--sample", "150", "--pca", "5", "--data-dir", str(data_dir),
                 "--out", str(out), "--json"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["points"] == 150 and rows[0]["splits"] == ["train"]
    assert (out / rows[0]["file"].rsplit("/", 1)[-1]).is_file() and any(cache_dir.iterdir())


def test_shipped_maps_hold_no_data():
    files = sorted(embed.SHIPPED.glob("*.npz"))
    assert files, "precomputed maps are shipped in assets/embeddings"
    for path in files:
        assert path.stat().st_size < 1_000_000, f"{path.name} should stay small"
        with np.load(path) as z:
            assert set(z.files) == {"coords", "indices", "meta"}, f"{path.name} holds only positions and parameters"
            assert z["coords"].dtype == np.float16 and z["indices"].dtype.kind == "u"
        emb = embed.read(path)
        assert len(emb.indices) >= 10000, f"{path.name}: a map shows at least 10,000 points"
        assert path.stem == emb.config.key(), f"{path.name} is named for its parameters"


@pytest.mark.parametrize("dataset", ["kmnist6k", "mnist"])
def test_shipped_pixel_maps_match_the_real_data(shared_data, dataset):
    emb = embed.find(embed.EmbedConfig(dataset=dataset), shared_data)
    assert emb is not None and emb.source.parent == embed.SHIPPED, "the page's default map is shipped"
    labels = embed.labels(emb, shared_data)
    assert len(labels) == len(emb.indices) and len(np.unique(labels)) == 10
