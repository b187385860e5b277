"""A model as a layer table."""
from kmnist.config import ARCHS
from kmnist.models import ARCHITECTURES, build, layer_table, parameter_count


def test_layer_table_lists_every_layer_with_its_weights():
    model = build("seed", 10)
    rows = layer_table(model)
    assert [r["type"] for r in rows[-3:]] == ["Dense", "Dropout", "Dense"], "layers in model order"
    assert sum(r["parameters"] for r in rows) == parameter_count(model) == 2_380_938
    features = next(r for r in rows if r["layer"] == "features")
    assert features == {"layer": "features", "type": "Dense", "output shape": "(batch, 256)", "parameters": 2_359_552}


def test_every_architecture_a_config_accepts_is_built():
    assert tuple(ARCHITECTURES) == ARCHS, "config.ARCHS names exactly the networks models.ARCHITECTURES builds"
