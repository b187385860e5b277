"""Same seed, same model: stateless augmentation, a seeded epoch order, and the fused-BatchNorm training copy."""
from __future__ import annotations

import json

import numpy as np
import pytest

from kmnist import models, runs
from kmnist.config import TrainConfig, preset
from kmnist.train import make_pipeline, train


def _images(n: int = 16) -> np.ndarray:
    x = np.zeros((n, 28, 28), np.uint8)
    x[:, 8:20, 12:16] = 255
    return x


def test_warp_is_fixed_by_its_seed_alone():
    from kmnist.augment import augmenter
    x = _images()[..., None].astype(np.float32)
    warp = augmenter(1.0, elastic=0.5)
    a, b = np.asarray(warp(x, (3, 7))), np.asarray(warp(x, (3, 7)))
    assert np.array_equal(a, b), "the same seed must give the same warp, call after call"
    assert not np.allclose(a, np.asarray(warp(x, (3, 8)))), "another seed gives another warp"
    assert not np.allclose(a[0], a[1]), "each image of a batch gets its own warp"


def test_cutmix_is_seeded_and_labels_follow_the_pasted_area():
    from kmnist.augment import cutmixer
    rng = np.random.default_rng(2)
    x = rng.uniform(1, 255, (64, 28, 28, 1)).astype(np.float32)  # no zero pixels: every pasted one shows
    onehots = np.eye(10, dtype=np.float32)[np.arange(64) % 10]
    mix = cutmixer(0.5)
    mixed, labels = (np.asarray(t) for t in mix(x, onehots, (1, 2)))
    again, _ = mix(x, onehots, (1, 2))
    assert np.array_equal(mixed, np.asarray(again)), "the same seed must paste the same boxes"
    assert not np.array_equal(mixed, np.asarray(mix(x, onehots, (1, 3))[0])), "another seed, other boxes"
    pasted = (mixed != x)[..., 0].mean(axis=(1, 2))  # share of each image taken from its neighbour
    partner = np.roll(np.arange(64), 1)
    assert 10 < (pasted > 0).sum() < 54, f"about half the images get a box, not {(pasted > 0).sum()} of 64"
    np.testing.assert_allclose(labels.sum(1), 1.0, atol=1e-6, err_msg="mixed labels stay distributions")
    np.testing.assert_allclose(labels[np.arange(64), partner % 10], pasted, atol=1e-6,
                               err_msg="the partner's label weight is the area pasted from it")
    np.testing.assert_allclose(labels[np.arange(64), np.arange(64) % 10], 1 - pasted, atol=1e-6)
    untouched = pasted == 0
    assert np.array_equal(mixed[untouched], x[untouched]) and np.array_equal(labels[untouched], onehots[untouched])
    none, _ = cutmixer(0.0)(x, onehots, (1, 2))
    assert np.array_equal(np.asarray(none), x), "share 0 pastes nothing"


def _epochs(config: TrainConfig, epochs: int = 2) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (50, 28, 28), dtype=np.uint8), rng.integers(0, 10, 50)
    ds = make_pipeline(images, labels, 10, config, training=True)
    return [[np.asarray(x) for x, _ in ds] for _ in range(epochs)]


def test_pipeline_repeats_every_epoch_for_a_seed_and_varies_between_epochs():
    config = TrainConfig(batch_size=16, augment=1.0, elastic=0.5, seed=4)
    first, again = _epochs(config), _epochs(config)
    for epoch, (a, b) in enumerate(zip(first, again)):
        assert all(np.array_equal(x, y) for x, y in zip(a, b)), f"epoch {epoch + 1} differs between runs"
    assert not np.allclose(first[0][0], first[1][0]), "epoch 2 must see another order and other warps than epoch 1"
    other = _epochs(config.replace(seed=5), epochs=1)
    assert not np.allclose(first[0][0], other[0][0]), "another seed gives other batches"
    mixed, mixed_again = _epochs(config.replace(cutmix=1.0), epochs=1), _epochs(config.replace(cutmix=1.0), epochs=1)
    assert all(np.array_equal(x, y) for x, y in zip(mixed[0], mixed_again[0])), "CutMix repeats for a seed too"
    assert not all(np.array_equal(x, y) for x, y in zip(mixed[0], first[0])), "CutMix changes the batches"


def test_validation_pipeline_keeps_order_and_pixels():
    images = np.random.default_rng(1).integers(0, 256, (40, 28, 28), dtype=np.uint8)
    labels = np.arange(40) % 10
    ds = make_pipeline(images, labels, 10, TrainConfig(batch_size=16, augment=1.0), training=False)
    x = np.concatenate([np.asarray(b[0]) for b in ds])
    y = np.concatenate([np.asarray(b[1]) for b in ds])
    assert np.array_equal(x[..., 0], images) and np.array_equal(y.argmax(1), labels)


def test_fused_training_copy_computes_what_the_plain_model_does():
    import keras
    keras.utils.set_random_seed(0)
    plain = models.build("resnet-bn", 10)
    fused = models.training_copy(plain)
    assert fused is not plain and [w.shape for w in fused.weights] == [w.shape for w in plain.weights]
    assert {type(layer).__name__ for layer in fused.layers} >= {"FusedBatchNormalization"}
    x = np.random.default_rng(0).uniform(0, 255, (8, 28, 28, 1)).astype(np.float32)
    for training in (False, True):  # up to the features layer: the dropout after it draws its own masks
        a, b = (np.asarray(models.feature_model(m)(x, training=training)) for m in (plain, fused))
        assert np.allclose(a, b, atol=1e-4), f"training={training}: outputs differ by {np.abs(a - b).max()}"
    for layer in plain.layers:
        if type(layer).__name__ == "BatchNormalization":
            twin = fused.get_layer(layer.name)
            assert np.allclose(layer.moving_variance.numpy(), twin.moving_variance.numpy(), rtol=1e-4), (
                f"{layer.name}: moving variance must be updated with the biased batch variance, as Keras does")
    assert models.training_copy(models.build("seed", 10)).name == "seed", "nothing to fuse: same model"


@pytest.mark.slow
def test_same_seed_same_history_with_augmentation(data_dir):
    config = preset("resnet-bn").replace(dataset="tiny10", epochs=2, batch_size=32, limit=120, warmup_epochs=1)
    assert config.augment > 0 and config.elastic > 0 and config.fused_bn, "the flagship's own training path"

    def history(run_id: str, **changes) -> dict:
        run = train(config.replace(**changes), data_root=data_dir, run_id=run_id)
        return json.loads((run.path / runs.HISTORY_FILE).read_text())

    first, again = history("a"), history("b")
    assert first == again, f"same seed, different histories:\n{first}\n{again}"
    assert history("c", seed=1) != first, "another seed should give another history"
    saved = runs.get_run("a").load_model()
    assert "FusedBatchNormalization" not in {type(layer).__name__ for layer in saved.layers}, "saved file is plain"
