"""tf.distribute: a mirrored run over two logical CPU devices trains like a single-device one."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Logical devices must be configured before TensorFlow initialises, so the run happens in a fresh process.
SCRIPT = r"""
import json, sys
from pathlib import Path
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from kmnist.config import preset
from kmnist.train import strategy_for, train
data_root, runs_root = Path(sys.argv[1]), Path(sys.argv[2])
config = preset("resnet-bn").replace(dataset="tiny10", epochs=2, batch_size=32, strategy="mirrored", tta=False)
run = train(config, data_root=data_root, runs_root=runs_root, run_id="mirrored")
model = run.load_model()
print(json.dumps({
    "replicas": strategy_for("mirrored").num_replicas_in_sync,
    "state": run.state, "loss": run.history["loss"], "val_loss": run.history["val_loss"],
    "output_shape": list(model.predict(np.zeros((3, 28, 28, 1), np.float32), verbose=0).shape),
    "predictions": list(run.test_predictions().shape), "accuracy": run.metrics["accuracy"]}))
"""


@pytest.mark.slow
def test_mirrored_training_on_two_logical_cpus(data_dir, tmp_path):
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(data_dir), str(tmp_path / "runs")], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2, "MirroredStrategy should replicate over both logical CPU devices"
    assert result["state"] == "completed"
    assert len(result["loss"]) == 2 and all(0 < v < 100 for v in result["loss"] + result["val_loss"]), (
        f"losses should be finite and positive: {result}")
    assert result["output_shape"] == [3, 10]
    assert result["predictions"] == [100], "one prediction per tiny10 test image"
    assert 0 <= result["accuracy"] <= 1


def test_unknown_strategy_is_refused():
    from kmnist.train import strategy_for
    with pytest.raises(ValueError, match="unknown strategy"):
        strategy_for("parameter-server")
