"""TensorFlow's start-up chatter: kept off the terminal, and out of a training log as the app shows it.

On a machine without a GPU, importing TensorFlow 2.21 prints its GPU probing ("Could not find cuda
drivers", "failed call to cuInit") through C++ logging that starts before TF_CPP_MIN_LOG_LEVEL is read
(absl's "All log messages before absl::InitializeLog() is called are written to STDERR"), so no setting
silences it: these lines are noise, not errors, and are filtered out by what they say.
"""
from __future__ import annotations

import os
import re
import sys
import tempfile

# (An empty CUDA_VISIBLE_DEVICES does not stop it: TensorFlow 2.21 calls cuInit regardless.)
GPU_PROBING = re.compile(r"cudart_stub\.cc|cuda_platform\.cc.*cuInit|cuda_(dnn|fft|blas)\.cc.*Unable to register|"
                         r"All log messages before absl::InitializeLog|port\.cc.*oneDNN custom operations|"
                         r"computation_placer\.cc.*already registered")


def quiet_log(text: str) -> str:
    """`text` without TensorFlow's GPU probing lines; everything else, errors included, stays."""
    return "\n".join(line for line in text.splitlines() if not GPU_PROBING.search(line))


def load_tensorflow() -> None:
    """Import TensorFlow and let it probe for devices with its standard error held back; whatever it printed
    besides the probing (a warning, an error) is passed on."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            import tensorflow as tf
            tf.config.list_physical_devices()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            rest = quiet_log(held.read().decode("utf-8", errors="replace"))
            if rest:
                print(rest, file=sys.stderr)
