"""The flagship architecture and recipe, the K49 preset, augmentation, and the shipped default model."""
from __future__ import annotations

import numpy as np
import pytest

from kmnist import datasets, runs
from kmnist.config import PRESETS, TrainConfig, preset
from kmnist.models import ARCHITECTURES, build, feature_model

FLAGSHIP = "resnet-bn"


@pytest.mark.parametrize("num_classes", [10, 49])
def test_flagship_builds_with_features_and_rescaling_inside(num_classes):
    model = build(FLAGSHIP, num_classes)
    assert model.input_shape == (None, 28, 28, 1)
    assert model.output_shape == (None, num_classes)
    assert any(type(layer).__name__ == "Rescaling" for layer in model.layers), "input stays 0..255"
    probs = model.predict(np.full((2, 28, 28, 1), 255.0, np.float32), verbose=0)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5), "softmax output"
    assert feature_model(model).output_shape == (None, 256)
    assert model.count_params() < 2_500_000, "should stay below the file-size target (10 MB)"


def test_presets_keep_seed_and_add_flagship_and_k49():
    assert PRESETS["seed"] == TrainConfig(), "the seed recipe must not change"
    flagship = preset(FLAGSHIP)
    assert flagship.arch == FLAGSHIP and flagship.arch in ARCHITECTURES
    assert flagship.augment > 0 and flagship.label_smoothing > 0 and flagship.schedule == "onecycle"
    k49 = preset("k49")
    assert k49.dataset == "k49" and k49.class_weighting == "balanced" and k49.arch in ARCHITECTURES
    assert preset("k49") is not PRESETS["k49"], "preset() hands out a copy"


def test_augmenter_warps_within_range_and_strength_zero_is_identity():
    from kmnist.augment import augmenter
    x = np.zeros((16, 28, 28, 1), np.float32)
    x[:, 8:20, 12:16] = 255.0
    for elastic in (0.0, 1.0):
        out = np.asarray(augmenter(1.0, elastic=elastic)(x, (0, 0)))
        assert out.shape == x.shape and out.min() >= 0 and out.max() <= 255.0 + 1e-3
        assert not np.allclose(out, x), "augmentation should change the images"
    ink = np.asarray(augmenter(1.0)(x, (0, 0))).sum(axis=(1, 2, 3)) / x[0].sum()
    assert np.all((ink > 0.7) & (ink < 1.3)), f"an affine warp within ±10% zoom keeps the ink amount: {ink}"
    assert np.allclose(np.asarray(augmenter(0.0)(x, (0, 0))), x, atol=1e-3), "strength 0 leaves images as they are"


@pytest.mark.slow
def test_k49_preset_trains_a_few_steps_on_49_classes(data_dir):
    from kmnist.train import train
    run = train(preset("k49").replace(dataset="tiny49", epochs=1), data_root=data_dir, run_id="k49-smoke")
    assert run.state == "completed"
    assert len(run.classes) == 49 and run.config.class_weighting == "balanced"
    assert np.isfinite(run.history["loss"][0])
    assert run.test_predictions().shape == (49 * 4,)


def test_default_model_is_the_flagship_and_the_seed_is_kept():
    default = runs.DEFAULT_POINTER.read_text().strip()
    run = runs.get_run(default)
    assert run.shipped and run.config.arch == FLAGSHIP and run.config.dataset == "kmnist6k"
    assert run.state == "completed"
    assert run.metrics["accuracy"] > runs.get_run("kmnist6k-seed").metrics["accuracy"], "flagship beats seed"
    assert (run.path / runs.MODEL_FILE).stat().st_size < 10_000_000, "model file under 10 MB"


def test_shipped_flagship_scores_what_its_metrics_say(shared_data):
    from kmnist.predict import predict_proba
    run = runs.get_run(runs.DEFAULT_POINTER.read_text().strip())
    test = datasets.load("kmnist6k", shared_data).test
    y_pred = predict_proba(run.load_model(), test.images, tta=run.config.tta).argmax(axis=1)
    accuracy = float((y_pred == test.labels).mean())
    assert accuracy == pytest.approx(run.metrics["accuracy"], abs=0.002), "reloaded model matches its run"
    agreement = float((y_pred == run.test_predictions()).mean())
    assert agreement > 0.998, f"reloaded model should repeat the stored test predictions, agrees on {agreement:.4f}"
