"""Typed training configuration and the named presets a run starts from."""
from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass

ARCHS = ("seed", "resnet-bn", "resnet-bn-wide")  # the networks kmnist.models.ARCHITECTURES builds
OPTIMIZERS = ("adadelta", "adamw")
SCHEDULES = ("constant", "onecycle")
CLASS_WEIGHTINGS = ("none", "balanced")
STRATEGIES = ("default", "mirrored", "multi-worker")
PRECISIONS = ("float32", "mixed_bfloat16")
WORDS = {"arch": "architecture", "class_weighting": "class weighting"}  # field names as a message says them


def _check_type(name: str, value, kind: str) -> None:
    """`value` is of the field's annotated type (bool is not a number here, an int is a float)."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok, words = {"bool": (isinstance(value, bool), "true or false"),
                 "int": (number and isinstance(value, int), "a whole number"),
                 "float": (number, "a number"),
                 "str": (isinstance(value, str), "a string")}[kind]
    if not ok:
        raise ValueError(f"{name} must be {words}, not {value!r}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs besides the data, checked when made: a bad value is a ValueError."""
    arch: str = "seed"  # architecture name, one of ARCHS
    dataset: str = "kmnist6k"  # dataset name (official or a dataset folder)
    epochs: int = 12  # passes over the training split
    batch_size: int = 128  # images per gradient step
    seed: int = 0  # seeds the split, the weights and the augmentation
    val_fraction: float = 0.1  # share of the training data held out for validation
    optimizer: str = "adadelta"  # "adadelta" (seed recipe) or "adamw"
    learning_rate: float = 1.0  # peak learning rate
    rho: float = 0.95  # Adadelta decay; the original Keras value
    weight_decay: float = 0.0  # AdamW decoupled weight decay
    schedule: str = "constant"  # "constant" or "onecycle" (linear warm-up, cosine decay)
    warmup_epochs: float = 0.0  # warm-up length for "onecycle"
    label_smoothing: float = 0.0  # cross-entropy label smoothing
    augment: float = 0.0  # strength of random affine augmentation, 0 = off, 1 = default ranges
    elastic: float = 0.0  # strength of random elastic distortion during training, 0 = off
    cutmix: float = 0.0  # share of training images given a CutMix box from another image (labels mixed by area)
    class_weighting: str = "none"  # "none" or "balanced" (inverse-frequency loss weights)
    ema: float = 0.0  # weight averaging decay, 0 = off
    tta: bool = False  # average predictions over small shifts at evaluation
    strategy: str = "default"  # tf.distribute strategy: "default", "mirrored" or "multi-worker"
    fused_bn: bool = True  # BatchNorm trains with TF's fused kernel (same maths, faster); False: Keras' ops (old)
    precision: str = "float32"  # training compute dtype policy: "float32" or "mixed_bfloat16" (fast with AMX)
    limit: int = 0  # use only the first N training images, 0 = all (for smoke tests)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            _check_type(f.name, getattr(self, f.name), f.type)
        for name, allowed in (("arch", ARCHS), ("optimizer", OPTIMIZERS), ("schedule", SCHEDULES),
                              ("class_weighting", CLASS_WEIGHTINGS), ("strategy", STRATEGIES),
                              ("precision", PRECISIONS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"unknown {WORDS.get(name, name)} {getattr(self, name)!r}; "
                                 f"choose one of {', '.join(allowed)}")
        rules = (("dataset", bool(self.dataset), "a dataset name"),
                 ("epochs", self.epochs >= 1, "at least 1"),
                 ("batch_size", self.batch_size >= 1, "at least 1"),
                 ("seed", self.seed >= 0, "at least 0"),
                 ("limit", self.limit >= 0, "at least 0 (0 = all images)"),
                 ("val_fraction", 0 <= self.val_fraction < 1, "in [0, 1)"),
                 ("learning_rate", self.learning_rate > 0, "positive"),
                 ("rho", 0 < self.rho < 1, "in (0, 1)"),
                 ("weight_decay", self.weight_decay >= 0, "at least 0"),
                 ("warmup_epochs", self.warmup_epochs >= 0, "at least 0"),
                 ("label_smoothing", 0 <= self.label_smoothing < 1, "in [0, 1)"),
                 ("augment", self.augment >= 0, "at least 0"),
                 ("elastic", self.elastic >= 0, "at least 0"),
                 ("cutmix", 0 <= self.cutmix <= 1, "in [0, 1]"),
                 ("ema", 0 <= self.ema < 1, "in [0, 1)"))
        for name, ok, rule in rules:  # comparisons with NaN are false, so NaN is refused too
            if not ok:
                raise ValueError(f"{name} must be {rule}, not {getattr(self, name)!r}")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "TrainConfig":
        """A config from its JSON; keys it does not know (e.g. `framing`, which older runs kept here) are left out."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def replace(self, **changes) -> "TrainConfig":
        """A copy with the given fields changed; None leaves a field as it is (unset command-line options)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


# The seed study's recipe: Keras mnist_cnn with Adadelta(1.0, rho 0.95), batch 128, 12 epochs.
SEED = TrainConfig()

# The flagship recipe, chosen on the validation split (BENCHMARKS.md): a small BatchNorm ResNet with
# early pooling, 64/128/256 wide for 90 epochs (lower validation loss on two seeds than 48/96/192 for 150
# epochs, in less time; CutMix lost), AdamW with warm-up and cosine decay, label smoothing, affine + mild elastic
# augmentation. No TTA: the canvas path scores one image once, so the reported accuracy is what it gets.
# Trained in bfloat16 (weights float32): ~2x the images/s on CPUs with AMX (the build machine's Xeon);
# on a CPU without AVX512-BF16/AMX bfloat16 is emulated and slow, so train there with precision="float32".
RESNET_BN = TrainConfig(
    arch="resnet-bn-wide", epochs=90, batch_size=128, optimizer="adamw", learning_rate=3e-3, weight_decay=5e-4,
    schedule="onecycle", warmup_epochs=2, label_smoothing=0.1, augment=1.0, elastic=0.5, precision="mixed_bfloat16")

# K49: the flagship recipe on 232,365 imbalanced images: inverse-frequency class weights, 12 epochs
# (each is ~43x kmnist6k's: 12 make ~2.5x the flagship's 3,870 steps at twice its batch), batch 256 for throughput.
K49 = RESNET_BN.replace(dataset="k49", epochs=12, batch_size=256, learning_rate=4e-3, class_weighting="balanced")

PRESETS: dict[str, TrainConfig] = {"seed": SEED, "resnet-bn": RESNET_BN, "k49": K49}


def recipe(arch: str) -> TrainConfig:
    """How to train architecture `arch` when no preset is named: the seed study's recipe for its network,
    the flagship's for every other (the ResNets)."""
    return SEED if arch == SEED.arch else RESNET_BN.replace(arch=arch)


def preset(name: str) -> TrainConfig:
    """A named recipe (configs are frozen, so the preset itself is handed out)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]
