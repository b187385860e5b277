"""Model factories, one per architecture, and the optimizer each recipe trains with."""
from __future__ import annotations

from collections.abc import Callable
from functools import cache

from kmnist.config import TrainConfig

# Factories import Keras themselves, so listing architectures (CLI --help) stays instant.


def seed(num_classes: int):
    """Keras mnist_cnn, as in the seed study: 2,390,961 weights for 49 classes."""
    import keras
    from keras import layers
    inputs = keras.Input(shape=(28, 28, 1))
    x = layers.Rescaling(1.0 / 255)(inputs)
    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Dropout(0.25)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(256, activation="relu", name="features")(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="seed")


def _conv_bn(x, filters: int, name: str):
    """3x3 convolution, BatchNorm, ReLU; the conv has no bias because BatchNorm adds one.

    BatchNorm momentum 0.9 (not 0.99): runs are a few hundred steps, and the slower average would
    leave the inference statistics far from the trained weights.
    """
    from keras import layers
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def resnet_bn(num_classes: int, widths: tuple[int, ...] = (48, 96, 192), name: str = "resnet_bn"):
    """Small pre-pooled ResNet: a 28x28 stem, then one residual block per stage at 14, 7 and 4 pixels."""
    import keras
    from keras import layers
    inputs = keras.Input(shape=(28, 28, 1))
    x = layers.Rescaling(1.0 / 255)(inputs)
    x = _conv_bn(x, widths[0], "stem")
    for stage, width in enumerate(widths, 1):
        x = layers.MaxPooling2D(2, padding="same", name=f"s{stage}_pool")(x)
        shortcut = x if x.shape[-1] == width else layers.Conv2D(width, 1, use_bias=False, name=f"s{stage}_proj")(x)
        y = _conv_bn(x, width, f"s{stage}a")
        y = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"s{stage}b_conv")(y)
        y = layers.BatchNormalization(momentum=0.9, name=f"s{stage}b_bn")(y)
        x = layers.ReLU(name=f"s{stage}_out")(layers.Add(name=f"s{stage}_add")([shortcut, y]))
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(256, activation="relu", name="features")(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name=name)


def resnet_bn_wide(num_classes: int):
    """The flagship ResNet with 4/3 the stage widths (64/128/256): about 1.7x the compute per image."""
    return resnet_bn(num_classes, widths=(64, 128, 256), name="resnet_bn_wide")


ARCHITECTURES: dict[str, Callable] = {"seed": seed, "resnet-bn": resnet_bn, "resnet-bn-wide": resnet_bn_wide}


def build(arch: str, num_classes: int):
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch](num_classes)


def feature_model(model):
    """The penultimate representation: the layer named "features" (for embeddings)."""
    import keras
    return keras.Model(model.inputs, model.get_layer("features").output)


def optimizer(config: TrainConfig, steps_per_epoch: int):
    import keras
    lr = config.learning_rate
    if config.schedule == "onecycle":
        total = max(1, config.epochs * steps_per_epoch)
        warmup = int(config.warmup_epochs * steps_per_epoch)
        lr = keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else lr, decay_steps=max(1, total - warmup), alpha=0.0,
            warmup_target=lr if warmup else None, warmup_steps=warmup)
    elif config.schedule != "constant":
        raise ValueError(f"unknown schedule {config.schedule!r}")
    ema = dict(use_ema=True, ema_momentum=config.ema) if config.ema else {}
    if config.optimizer == "adadelta":
        return keras.optimizers.Adadelta(learning_rate=lr, rho=config.rho, **ema)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=lr, weight_decay=config.weight_decay, **ema)
    raise ValueError(f"unknown optimizer {config.optimizer!r}")


@cache
def _fused_batch_norm():
    """Keras' BatchNormalization whose training step runs TensorFlow's fused kernel.

    Keras 3 normalises with a dozen separate ops (moments, subtract, multiply, their gradients), which
    cost the flagship about a quarter of each CPU training step; the fused kernel computes the same
    statistics and output in one pass (statistics in float32 also for bfloat16 input). Inference, masks
    and anything but plain 4-D input keep the parent's path. Training only: saved models hold the
    plain layer (see `compile_model`).
    """
    import keras
    import tensorflow as tf

    class FusedBatchNormalization(keras.layers.BatchNormalization):
        def call(self, inputs, training=None, mask=None):
            plain = (not (training and self.trainable) or mask is not None or len(inputs.shape) != 4
                     or self.axis not in (-1, 3) or not (self.center and self.scale) or self.renorm
                     or self.synchronized or inputs.dtype not in (tf.float32, tf.bfloat16))
            if plain:
                return super().call(inputs, training=training, mask=mask)
            out, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                inputs, self.gamma, self.beta, epsilon=self.epsilon, is_training=True)
            # The kernel hands back the unbiased variance; Keras averages the biased one.
            n = tf.cast(tf.reduce_prod(tf.shape(inputs)[:-1]), variance.dtype)
            variance = variance * (n - 1) / n
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
            return out

    return FusedBatchNormalization


def training_copy(model, fused_bn: bool = True, precision: str = "float32"):
    """`model` rebuilt for training, same weights and layer names: BatchNormalization layers with the fused
    kernel (`fused_bn`), every layer but the softmax output computing in `precision` (a Keras dtype
    policy such as "mixed_bfloat16"; weights stay float32)."""
    import keras
    fused = _fused_batch_norm()
    output = model.layers[-1]

    def clone(layer):
        kind = fused if fused_bn and type(layer) is keras.layers.BatchNormalization else type(layer)
        config = layer.get_config()
        if layer is not output and not isinstance(layer, keras.layers.InputLayer):
            config["dtype"] = precision
        return kind.from_config(config)

    has_bn = any(type(layer) is keras.layers.BatchNormalization for layer in model.layers)
    if precision == "float32" and not (fused_bn and has_bn):
        return model
    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def compile_model(model, config: TrainConfig, steps_per_epoch: int):
    """The model to fit, compiled as `config` says: a training copy with fused BatchNorm and the
    compute precision of `config` (same weights and layer names; train() saves the plain float32
    architecture with the trained weights)."""
    import keras
    model = training_copy(model, config.fused_bn, config.precision)
    model.compile(optimizer=optimizer(config, steps_per_epoch),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
                  metrics=["accuracy"])
    return model


# A model described as data: one row per layer, and the weight count.

def _shape(layer) -> str:
    try:
        shape = layer.output.shape
    except (AttributeError, ValueError):  # layers without a single symbolic output
        return "?"
    return str(tuple(shape)).replace("None", "batch")


def layer_table(model) -> list[dict]:
    """name, type, output shape and weight count of each layer, in order."""
    return [{"layer": layer.name, "type": type(layer).__name__, "output shape": _shape(layer),
             "parameters": int(layer.count_params())} for layer in model.layers]


def parameter_count(model) -> int:
    return int(model.count_params())
