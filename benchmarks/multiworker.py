"""Multi-worker training on one machine: an epoch with one worker beside two, the all-reduce cost, a K49 plan.

    KMNIST_DATA_DIR=/path/to/data python benchmarks/multiworker.py [--epochs 2] [--dataset kmnist6k]
        [--limit N] [--out benchmarks/multiworker.json] [--no-markdown]

Trains the K49 preset's recipe (network, batch 256, augmentation, class weights) on `--dataset` for
`--epochs` epochs, twice: once as one machine (`--strategy default`, Keras' fit) and once as two worker
processes on 127.0.0.1 (`--strategy multi-worker`, free ports picked now, global batch 256 = 128 a worker).
Each process times its epochs with a callback; the last epoch is the one reported (the first also traces
the step). After training, the two workers time all-reduces of a float32 vector of the network's size (what
every step exchanges) and of one scalar (the latency floor), eagerly: an upper bound on the in-step cost. Writes the JSON and, unless --no-markdown, the
table between the multiworker markers of BENCHMARKS.md. The load average is recorded before and after: the
machine is shared.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the package is beside benchmarks/
from tests.test_multiworker import free_ports  # noqa: E402 - the tests' workers and these pick ports alike
K49_TRAIN = 232_365  # K49 training images
MARK = ("<!-- multiworker:start -->", "<!-- multiworker:end -->")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def role(kind: str, epochs: int, dataset: str, limit: int, out: Path) -> None:
    """One process of the benchmark: train, time the epochs, (workers) time all-reduces; JSON to `out`."""
    import keras
    from kmnist import datasets, distributed, models
    from kmnist.config import preset
    from kmnist.train import fit, prepare

    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epochs: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.began = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.epochs.append(time.perf_counter() - self.began)

    config = preset("k49").replace(dataset=dataset, epochs=epochs, limit=limit,
                                   strategy="multi-worker" if kind == "worker" else "default")
    timer = Timer()
    data = datasets.load(dataset)
    with tempfile.TemporaryDirectory() as run_dir:  # fit only: saving and scoring are not what is compared
        prepared = prepare(config, data, Path(run_dir))
        fit(prepared, Path(run_dir), time.time(), threading.Event(), [timer])
    fitted = len(prepared.train.labels)
    report = {"epoch_s": timer.epochs, "train_images": fitted}
    if kind == "worker":
        import numpy as np
        import tensorflow as tf
        strategy = distributed.strategy()
        params = models.build(config.arch, 10).count_params()

        def exchange(v):
            return strategy.reduce("sum", strategy.run(
                lambda v: tf.reduce_sum(tf.distribute.get_replica_context().all_reduce("sum", v)), args=(v,)),
                axis=None)

        step = exchange  # eager, as Loop.share runs (in a tf.function these all-reduces fail): an upper bound
        timings = {}
        for name, size in (("gradient", params), ("scalar", 1)):
            v = tf.constant(np.ones(size, np.float32))
            for _ in range(5):
                step(v).numpy()
            times = []
            for _ in range(30):
                t = time.perf_counter()
                step(v).numpy()
                times.append(time.perf_counter() - t)
            timings[name] = sorted(times)[len(times) // 2]
        report |= {"params": params, "allreduce_gradient_s": timings["gradient"], "allreduce_scalar_s": timings["scalar"]}
    out.write_text(json.dumps(report))


def run_role(kind: str, args, tmp: Path, env_extra: dict | None = None, tag: str = "") -> subprocess.Popen:
    out = tmp / f"{kind}{tag}.json"
    return subprocess.Popen([sys.executable, __file__, "--role", kind, "--epochs", str(args.epochs),
                             "--dataset", args.dataset, "--limit", str(args.limit),
                             "--role-out", str(out)],
                            cwd=ROOT, env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "2"} | (env_extra or {}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--dataset", default="kmnist6k")
    p.add_argument("--limit", type=int, default=0, help="use only the first N training images (0 = all)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "multiworker.json"))
    p.add_argument("--no-markdown", action="store_true")
    p.add_argument("--role", choices=["one", "worker"], help=argparse.SUPPRESS)
    p.add_argument("--role-out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.role:
        return role(args.role, args.epochs, args.dataset, args.limit, Path(args.role_out))
    started, load_before = datetime.now(timezone.utc).isoformat(timespec="seconds"), load()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        one = run_role("one", args, tmp)
        if one.wait():
            sys.exit("the one-machine run failed")
        load_middle = load()
        cluster = [f"127.0.0.1:{port}" for port in free_ports(2)]
        workers = [run_role("worker", args, tmp, {"TF_CONFIG": json.dumps(
            {"cluster": {"worker": cluster}, "task": {"type": "worker", "index": i}})}, str(i)) for i in range(2)]
        if any(w.wait() for w in workers):
            sys.exit("a worker failed")
        one_r = json.loads((tmp / "one.json").read_text())
        chief, other = (json.loads((tmp / f"worker{i}.json").read_text()) for i in range(2))
    images = one_r["train_images"]
    one_s, two_s = one_r["epoch_s"][-1], max(chief["epoch_s"][-1], other["epoch_s"][-1])
    steps = math.ceil(images / 256)
    k49_fit = round(K49_TRAIN * 0.9)  # after the 10% validation split
    per_image = one_s / images  # seconds of this machine's 2 cores per training image
    ring = chief["allreduce_gradient_s"]
    # Workers needed for a K49 epoch in 60 s if each worker were a machine like this one (2 cores, 256 a step),
    # paying the measured all-reduce per step: epoch(N) = k49_fit / N * per_image + steps(N) * ring.
    needed = next(n for n in range(1, 1000) if k49_fit / n * per_image + math.ceil(k49_fit / (256 * n)) * ring <= 60)
    result = {
        "measured": started, "machine": f"{platform.machine()}, {os.cpu_count()} logical cores",
        "load_average": {"start": load_before, "after_one": load_middle, "end": load()},
        "config": f"preset k49 on {args.dataset}" + (f" (first {args.limit} images)" if args.limit else "")
                  + f", {args.epochs} epochs, global batch 256", "train_images": images,
        "one": {"epoch_s": one_r["epoch_s"], "images_per_s": images / one_s, "step_ms": 1000 * one_s / steps},
        "two": {"epoch_s": [chief["epoch_s"], other["epoch_s"]], "images_per_s": images / two_s,
                "step_ms": 1000 * two_s / steps},
        "allreduce": {"params": chief["params"], "bytes": 4 * chief["params"],
                      "gradient_ms": 1000 * ring, "scalar_ms": 1000 * chief["allreduce_scalar_s"]},
        "k49_plan": {"fit_images": k49_fit, "seconds_per_image": per_image,
                     "one_epoch_min": k49_fit * per_image / 60, "workers_for_60s": needed},
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    if not args.no_markdown:
        write_markdown(result)


def write_markdown(r: dict) -> None:
    one, two, ar, plan = r["one"], r["two"], r["allreduce"], r["k49_plan"]
    text = (f"Measured {r['measured']} on {r['machine']}, both workers on the same 2 cores; {r['config']} "
            f"({r['train_images']:,} images an epoch); load average (1, 5, 15 min) {r['load_average']['start']} at "
            f"start, {r['load_average']['after_one']} between, {r['load_average']['end']} at end (shared machine).\n\n"
            "| run | last epoch | images/s | per step (256) |\n| --- | ---: | ---: | ---: |\n"
            f"| one machine (`--strategy default`, Keras fit) | {one['epoch_s'][-1]:.1f} s | {one['images_per_s']:.0f} "
            f"| {one['step_ms']:.0f} ms |\n"
            f"| two workers on 127.0.0.1 (`--strategy multi-worker`) | {max(e[-1] for e in two['epoch_s']):.1f} s | "
            f"{two['images_per_s']:.0f} | {two['step_ms']:.0f} ms |\n\n"
            f"All-reduce between the two workers (median of 30, run eagerly, so an upper bound): the network's gradient, "
            f"{ar['params']:,} float32 ({ar['bytes'] / 1e6:.1f} MB), **{ar['gradient_ms']:.1f} ms**; one scalar "
            f"(the latency floor) {ar['scalar_ms']:.2f} ms.\n\n"
            f"K49 paper plan: {plan['fit_images']:,} images to fit an epoch; at this machine's measured "
            f"{1000 * plan['seconds_per_image']:.2f} ms per image one worker needs {plan['one_epoch_min']:.1f} min "
            f"an epoch, so **{plan['workers_for_60s']} workers** like it (2 cores each, 256 images a step each) "
            "bring an epoch under 1 minute, counting the measured all-reduce once per step.\n")
    path = ROOT / "BENCHMARKS.md"
    md = path.read_text()
    start, end = md.index(MARK[0]) + len(MARK[0]), md.index(MARK[1])
    path.write_text(md[:start] + "\n" + text + md[end:])


if __name__ == "__main__":
    main()
