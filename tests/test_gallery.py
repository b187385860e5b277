"""Choosing example images and laying them out."""
import numpy as np
import pytest

from kmnist import gallery


def test_samples_are_of_the_class_seeded_and_capped():
    labels = np.array([0, 1, 1, 2, 1, 1, 0, 1])
    picked = gallery.samples(labels, 1, 3, seed=5)
    assert len(picked) == 3 and set(labels[picked]) == {1}
    assert list(picked) == sorted(picked), "examples come in dataset order"
    np.testing.assert_array_equal(picked, gallery.samples(labels, 1, 3, seed=5))
    np.testing.assert_array_equal(gallery.samples(labels, 0, 10), [0, 6])


def test_samples_per_class_covers_empty_classes():
    picks = gallery.samples_per_class(np.array([0, 0, 2]), 4, 5)
    assert [len(p) for p in picks] == [2, 0, 1, 0]


def test_enlarge_repeats_pixels():
    big = gallery.enlarge(np.array([[0, 255]], np.uint8), 3)
    assert big.shape == (3, 6) and big.dtype == np.uint8
    assert (big[:, :3] == 0).all() and (big[:, 3:] == 255).all()


def test_tile_places_images_in_a_grid_with_gaps():
    images = np.stack([np.full((2, 2), v, np.uint8) for v in (10, 20, 30)])
    out = gallery.tile(images, cols=2, factor=1, gap=1, fill=0)
    assert out.shape == (5, 5), "2 rows and 2 columns of 2x2 cells with 1-pixel gaps"
    assert out[0, 0] == 10 and out[0, 3] == 20 and out[3, 0] == 30
    assert out[3, 3] == 0, "the unused cell stays background"
    assert gallery.tile(images, cols=10, factor=2, gap=0).shape == (4, 12), "never more columns than images"
    with pytest.raises(ValueError):
        gallery.tile(np.zeros((0, 2, 2), np.uint8), cols=2)
