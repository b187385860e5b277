"""A Keras model described as data: one row per layer, and the weight count."""
from __future__ import annotations


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
