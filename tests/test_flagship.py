"""The flagship architecture, the K49 preset training, augmentation, and re-scoring the shipped default model."""
from __future__ import annotations

import numpy as np
import pytest

from kmnist import datasets, runs
from kmnist.config import preset
from kmnist.models import build, feature_model

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


def test_shipped_flagship_scores_what_its_metrics_say(shared_data):
    """The one test of a committed run: re-scored from its model file, it repeats its test and validation scores."""
    from kmnist.evaluate import VALIDATION_KEYS, validation_scores
    from kmnist.predict import predict_proba
    from kmnist.train import split_train_val
    run = runs.get_run(runs.DEFAULT_POINTER.read_text().strip())
    data = datasets.load(run.config.dataset, shared_data)
    model = run.load_model()
    stored = run.test_predictions()
    assert float((stored == data.test.labels).mean()) == pytest.approx(run.metrics["accuracy"], abs=1e-9)
    shown = slice(0, 3000)  # a share of the test set is enough to see the model file repeat its predictions
    y_pred = predict_proba(model, data.test.images[shown], tta=run.config.tta).argmax(axis=1)
    agreement = float((y_pred == stored[shown]).mean())
    assert agreement > 0.998, f"reloaded model should repeat the stored test predictions, agrees on {agreement:.4f}"
    _, val = split_train_val(data.train.labels, run.config.val_fraction, run.config.seed)
    scores = validation_scores(predict_proba(model, data.train.images[val], tta=run.config.tta),
                               data.train.labels[val], run.config.label_smoothing)
    for key in VALIDATION_KEYS:
        assert scores[key] == pytest.approx(run.metrics[key], abs=0.002), f"{key} of the validation split"
    # Keras' own last val_loss came from the training copy: in bfloat16 compute it differs in the 4th digit.
    close = 1e-4 if run.config.precision == "float32" else 2e-3
    assert run.metrics["val_loss"] == pytest.approx(run.history["val_loss"][-1], rel=close), "Keras's own last one"
