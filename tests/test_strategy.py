"""tf.distribute: a mirrored run over two logical CPU devices trains like a single-device one."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Logical devices must be configured before TensorFlow initialises, so the runs happen in a fresh process.
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
out = {"replicas": strategy_for("mirrored").num_replicas_in_sync}
for strategy in ("default", "mirrored"):
    config = preset("resnet-bn").replace(dataset="tiny10", epochs=3, batch_size=32, strategy=strategy)
    run = train(config, data_root=data_root, runs_root=runs_root, run_id=strategy)
    out[strategy] = {"state": run.state, "loss": run.history["loss"],
                     "weights": [list(w.shape) for w in run.load_model().get_weights()],
                     "output_shape": list(run.load_model().predict(np.zeros((3, 28, 28, 1)), verbose=0).shape),
                     "predictions": list(run.test_predictions().shape)}
print(json.dumps(out))
"""


@pytest.mark.slow
def test_mirrored_training_on_two_logical_cpus_matches_one_device(data_dir, tmp_path):
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(data_dir), str(tmp_path / "runs")], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2, "MirroredStrategy should replicate over both logical CPU devices"
    one, two = result["default"], result["mirrored"]
    assert one["state"] == two["state"] == "completed"
    for key in ("weights", "output_shape", "predictions"):
        assert two[key] == one[key], f"{key}: mirrored {two[key]} vs one device {one[key]}"
    assert two["output_shape"] == [3, 10] and two["predictions"] == [100]
    # Same data, seed and global batch: each replica sees half a batch and the gradients are summed, so the
    # training loss follows the one-device run's (BatchNorm's per-replica statistics make it differ a little).
    for epoch, (a, b) in enumerate(zip(one["loss"], two["loss"])):
        assert abs(a - b) <= 0.1 * a, f"epoch {epoch + 1}: mirrored loss {b:.4f} vs one device {a:.4f}"
    assert two["loss"][-1] < two["loss"][0], f"mirrored training should reduce the loss: {two['loss']}"
