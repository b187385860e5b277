"""Training configs: the presets locked field by field, checked values, frozen copies, old runs' configs."""
from __future__ import annotations

import dataclasses
import json

import pytest

from kmnist import files, runs
from kmnist.config import PRESETS, TrainConfig, preset, recipe
from kmnist.preprocess import DEFAULT_FRAMING

# The seed study's recipe (Keras mnist_cnn: Adadelta 1.0, rho 0.95, batch 128, 12 epochs, no augmentation).
SEED_RECIPE = {
    "arch": "seed", "dataset": "kmnist6k", "epochs": 12, "batch_size": 128, "seed": 0, "val_fraction": 0.1,
    "optimizer": "adadelta", "learning_rate": 1.0, "rho": 0.95, "weight_decay": 0.0, "schedule": "constant",
    "warmup_epochs": 0.0, "label_smoothing": 0.0, "augment": 0.0, "elastic": 0.0, "cutmix": 0.0, "class_weighting": "none",
    "ema": 0.0, "tta": False, "strategy": "default", "fused_bn": True, "precision": "float32", "limit": 0}
# The flagship recipe chosen on the validation split (BENCHMARKS.md); the shipped default was trained with it.
FLAGSHIP_RECIPE = SEED_RECIPE | {
    "arch": "resnet-bn-wide", "epochs": 90, "optimizer": "adamw", "learning_rate": 3e-3, "weight_decay": 5e-4,
    "schedule": "onecycle", "warmup_epochs": 2, "label_smoothing": 0.1, "augment": 1.0, "elastic": 0.5,
    "precision": "mixed_bfloat16"}  # bfloat16 compute since issue 9 (BENCHMARKS.md, "Training faster")
K49_RECIPE = FLAGSHIP_RECIPE | {"dataset": "k49", "epochs": 12, "batch_size": 256, "learning_rate": 4e-3,
                                "class_weighting": "balanced"}


@pytest.mark.parametrize("name, recipe", [("seed", SEED_RECIPE), ("resnet-bn", FLAGSHIP_RECIPE),
                                          ("k49", K49_RECIPE)])
def test_presets_are_locked_field_by_field(name, recipe):
    assert preset(name).to_json() == recipe, f"the {name} recipe changed: make that a deliberate edit here too"


def test_each_architecture_has_a_recipe():
    assert recipe("seed") == preset("seed") and recipe("resnet-bn-wide") == preset("resnet-bn")
    assert recipe("resnet-bn") == preset("resnet-bn").replace(arch="resnet-bn"), "the flagship's recipe, narrower"


def test_configs_are_frozen_and_replace_makes_checked_copies():
    config = preset("seed")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 3
    assert config.replace(epochs=3, seed=None).to_json() == SEED_RECIPE | {"epochs": 3}, "None leaves a field"
    assert PRESETS["seed"].epochs == 12
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        config.replace(epochs=0)


@pytest.mark.parametrize("changes, message", [
    (dict(arch="vgg"), "unknown architecture 'vgg'; choose one of seed, resnet-bn, resnet-bn-wide"),
    (dict(cutmix=1.5), r"cutmix must be in \[0, 1\]"),
    (dict(optimizer="sgd"), "unknown optimizer 'sgd'"),
    (dict(precision="float16"), "unknown precision 'float16'; choose one of float32, mixed_bfloat16"),
    (dict(schedule="step"), "unknown schedule"),
    (dict(class_weighting="inverse"), "unknown class weighting"),
    (dict(strategy="tpu"), "unknown strategy"),
    (dict(dataset=""), "dataset must be a dataset name"),
    (dict(epochs=0), "epochs must be at least 1"),
    (dict(batch_size=-1), "batch_size must be at least 1"),
    (dict(seed=-1), "seed must be at least 0"),
    (dict(limit=-5), "limit must be at least 0"),
    (dict(val_fraction=1.0), r"val_fraction must be in \[0, 1\)"),
    (dict(learning_rate=0.0), "learning_rate must be positive"),
    (dict(learning_rate=float("nan")), "learning_rate must be positive, not nan"),
    (dict(rho=1.0), "rho must be in"),
    (dict(label_smoothing=-0.1), "label_smoothing must be in"),
    (dict(ema=1.0), "ema must be in"),
    (dict(augment=-1.0), "augment must be at least 0"),
    (dict(epochs="12"), "epochs must be a whole number, not '12'"),
    (dict(epochs=12.0), "epochs must be a whole number"),
    (dict(batch_size=True), "batch_size must be a whole number"),
    (dict(tta=1), "tta must be true or false"),
    (dict(learning_rate="fast"), "learning_rate must be a number"),
])
def test_bad_values_are_clear_value_errors(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**changes)


def test_a_config_round_trips_and_old_keys_are_left_out():
    config = preset("resnet-bn").replace(dataset="tiny10", epochs=2)
    assert TrainConfig.from_json(json.loads(json.dumps(config.to_json()))) == config
    old = config.to_json() | {"framing": {"box": 20.0, "com_y": 14.0, "com_x": 14.0, "stroke": 2.0}}
    assert TrainConfig.from_json(old) == config, "runs before framing.json kept the framing in config.json"
    assert "framing" not in config.to_json(), "framing belongs to the run, not the recipe"


def test_runs_read_their_framing_new_and_old(runs_dir):
    framing = {"box": 20.0, "com_y": 12.5, "com_x": 14.5, "stroke": 3.0}
    old, new, none = (runs_dir / n for n in ("old-run", "new-run", "no-framing"))
    for path in (old, new, none):
        path.mkdir(parents=True)
    files.write_json(old / runs.CONFIG_FILE, SEED_RECIPE | {"framing": framing})
    files.write_json(new / runs.CONFIG_FILE, SEED_RECIPE)
    files.write_json(new / runs.FRAMING_FILE, framing)
    files.write_json(none / runs.CONFIG_FILE, SEED_RECIPE)
    for run_id in ("old-run", "new-run"):
        run = runs.get_run(run_id)
        assert run.config == preset("seed") and (run.framing.box, run.framing.com_x) == (20.0, 14.5), run_id
    assert runs.get_run("no-framing").framing == DEFAULT_FRAMING


def test_shipped_runs_load_with_their_config_and_framing():
    for run in (r for r in runs.list_runs() if r.shipped):
        stored = json.loads((run.path / runs.CONFIG_FILE).read_text())
        assert run.config.to_json() == {k: v for k, v in stored.items() if k != "framing"} | {
            "elastic": stored.get("elastic", 0.0), "precision": stored.get("precision", "float32"),
            "fused_bn": stored.get("fused_bn", True), "cutmix": stored.get("cutmix", 0.0)}, run.id  # fused or not: the same maths, only speed
        framing = stored.get("framing") or json.loads((run.path / runs.FRAMING_FILE).read_text())  # older runs: config
        assert dataclasses.asdict(run.framing) == framing, f"{run.id} keeps the framing it trained with"
