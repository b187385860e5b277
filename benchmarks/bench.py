"""Train and measure architectures side by side on one dataset and one machine; writes benchmarks/bench.json
and the bench section of BENCHMARKS.md.

    python benchmarks/bench.py --data-dir ../shared/data [--quick] [--epochs N] [--arch A ...]

Every architecture trains with its own preset on the same data, then is measured the same way: test
scores, training time and speed, single-image latency, batch throughput, size and peak memory. The
flagship also trains as it was before issue 9 (`OLD_FLAGSHIP`: its recipe then, on its training path then),
so what the faster path and the new recipe bought is measured in the same run; the path's speed-up alone
is timed again epoch by epoch, old and new path interleaved in one process on today's recipe, so that
load from other users falls on both alike. Two studies ride along: class-imbalance handling on a skewed copy of the
training set, and the cost of a K49 epoch extrapolated from timed steps on a generated stand-in of K49's size.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from multiprocessing import get_context
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kmnist import KmnistError, chatter, datasets, files  # noqa: E402
from kmnist.config import ARCHS, PRESETS, TrainConfig, preset, recipe  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's info and warnings off the terminal; errors stay

K49_TRAIN_IMAGES = 232_365  # size of the official K49 training set
QUICK_LIMIT = 300  # training images per run in --quick mode
MARK_START, MARK_END = "<!-- bench:start -->", "<!-- bench:end -->"
# The flagship's training path before issue 9: Keras' composite BatchNorm ops, float32 throughout.
OLD_PATH = {"fused_bn": False, "precision": "float32"}
# The flagship as it was before issue 9, recipe and path: the bench trains it beside today's preset, so one
# run shows what the faster path and the validation-chosen recipe bought together.
OLD_FLAGSHIP = {"arch": "resnet-bn", "epochs": 100} | OLD_PATH


@dataclass
class BenchOptions:
    dataset: str = "kmnist6k"  # dataset every architecture trains and is tested on
    archs: tuple[str, ...] = ("seed", PRESETS["resnet-bn"].arch)  # seed and flagship network, each with config.recipe
    old_path: bool = True  # also train OLD_FLAGSHIP, and time the last architecture on old and new path interleaved
    speed_rounds: int = 5  # interleaved one-epoch fits per path in the speed-up study
    epochs: int = 0  # train every architecture this many epochs (0 = each preset's own), to bound wall time
    data_root: Path | None = None  # data dir (default: kmnist.datasets.data_dir())
    quick: bool = False  # smoke mode: 1 epoch on a few hundred images, short timings, in-process
    imbalance: bool = True  # run the imbalance study (flagship with and without class weighting)
    imbalance_epochs: int = 15  # epochs per imbalance-study run (fewer than the preset, to bound wall time)
    k49_cost: bool = True  # time K49-preset steps on a generated stand-in of K49's size
    k49_steps: int = 200  # timed steps for the K49 estimate (after warm-up)
    latency_calls: int = 300  # single-image calls timed per model
    seed: int = 0  # seeds the training runs and the imbalanced subset


def machine_info() -> dict:
    """CPU, cores, library versions and load: what a reader needs to compare timings."""
    import keras
    import tensorflow as tf
    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    return {"cpu": cpu, "cpu_flags": sorted(flags & {"avx2", "avx512f", "avx512_bf16", "amx_bf16"}),
            "logical_cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)),
            "os": platform.platform(), "python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__,
            "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()],
            "when": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def percentiles_ms(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1000
    return {"p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)), "calls": len(ms)}


def latency(model, calls: int) -> dict:
    """Single-image latency of the canvas path (`Predictor`, a compiled tf.function) and of a plain
    eager Keras call, each timed per call after warm-up."""
    from kmnist.predict import Predictor
    from kmnist.preprocess import to_input
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (calls, 28, 28), dtype=np.uint8)
    predictor = Predictor(model)
    paths: dict[str, Callable] = {"predictor": predictor,
                                  "eager": lambda im: np.asarray(model(to_input(im), training=False))}
    out = {}
    for name, call in paths.items():
        for im in images[:10]:  # warm-up: first calls pay tracing and allocation
            call(im)
        times = []
        for im in images:
            t = time.perf_counter()
            call(im)
            times.append(time.perf_counter() - t)
        out[name] = percentiles_ms(times)
    return out


def throughput(model, batch: int = 256, repeats: int = 10) -> float:
    """Images per second for batches of `batch` through the compiled predict step."""
    from kmnist.preprocess import to_input
    x = to_input(np.random.default_rng(0).integers(0, 256, (batch, 28, 28), dtype=np.uint8))
    model.predict_on_batch(x)
    t = time.perf_counter()
    for _ in range(repeats):
        model.predict_on_batch(x)
    return batch * repeats / (time.perf_counter() - t)


def peak_rss_mb() -> float:
    """Peak resident memory of this process (resource.getrusage ru_maxrss, KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_arch(config: TrainConfig, dataset: datasets.Dataset, latency_calls: int, path: str = "preset") -> dict:
    """Train one configuration and measure the saved model; meant to run in its own process."""
    from kmnist.train import train
    with tempfile.TemporaryDirectory() as tmp:
        run = train(config, dataset=dataset, runs_root=Path(tmp), run_id=f"bench-{config.arch}-{path}")
        m = run.metrics
        model = run.load_model()
        lat = latency(model, latency_calls)
        result = {k: m[k] for k in ("accuracy", "balanced_accuracy", "macro_f1", "train_seconds",
                                    "train_images_per_s", "params", "model_bytes", "train_images",
                                    "epochs_done")}
        recalls = [c["recall"] for c in m["per_class"]]
    return result | {"arch": config.arch, "path": path, "config": config.to_json(),
                     "min_class_recall": float(min(recalls)), "latency_ms": lat,
                     "batch256_images_per_s": throughput(model), "peak_rss_mb": peak_rss_mb()}


def imbalanced(dataset: datasets.Dataset, seed: int) -> tuple[datasets.Dataset, dict[int, float]]:
    """A skewed copy of the training split: per class, keep a share from 100% down to 10%
    (geometric steps, assigned to classes at random), like K49's most to least frequent characters."""
    rng = np.random.default_rng(seed)
    n = len(dataset.classes)
    keep = dict(zip(rng.permutation(n).tolist(), np.geomspace(1.0, 0.1, n).tolist()))
    labels = dataset.train.labels
    picked = []
    for c, share in keep.items():
        idx = rng.permutation(np.flatnonzero(labels == c))
        picked.append(idx[: max(2, int(round(len(idx) * share)))])
    order = np.sort(np.concatenate(picked))
    train = datasets.Split(dataset.train.images[order], labels[order])
    return datasets.Dataset(f"{dataset.name}-imbalanced", dataset.classes, train, dataset.test), keep


def speed_study(old: TrainConfig, new: TrainConfig, dataset: datasets.Dataset, rounds: int) -> dict:
    """Training images/s of two configurations, one epoch of each in turn, `rounds` times, in one process
    on the same split: load from other processes falls on both alike. The first epoch of each (tracing)
    is not timed; validation is left out."""
    import keras
    from kmnist import models
    from kmnist.train import make_pipeline, split_train_val
    tr, _ = split_train_val(dataset.train.labels, new.val_fraction, new.seed)
    if new.limit:
        tr = tr[: new.limit]
    images, labels, n = dataset.train.images[tr], dataset.train.labels[tr], len(dataset.classes)
    steps = int(np.ceil(len(tr) / new.batch_size))
    fits = []
    for config in (old, new):
        keras.utils.set_random_seed(config.seed)
        model = models.compile_model(models.build(config.arch, n), config, steps)
        pipeline = make_pipeline(images, labels, n, config, True)
        model.fit(pipeline, epochs=1, verbose=0)
        fits.append((model, pipeline))
    seconds: list[list[float]] = [[], []]
    for _ in range(rounds):
        for (model, pipeline), times in zip(fits, seconds):
            t = time.perf_counter()
            model.fit(pipeline, epochs=1, verbose=0)
            times.append(time.perf_counter() - t)
    return {"rounds": rounds, "train_images": int(len(tr)), "old_epoch_s": seconds[0], "new_epoch_s": seconds[1],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()]} | speedup(*seconds, len(tr))


def speedup(old_s: list[float], new_s: list[float], images: int) -> dict:
    """Summaries of paired epoch times: the median of the per-round ratios (each old epoch against the new one
    timed right after it, under nearly the same load) and, for reference, the ratio of the two medians."""
    ratios = np.asarray(old_s) / np.asarray(new_s)
    return {"old_images_per_s": images / float(np.median(old_s)), "new_images_per_s": images / float(np.median(new_s)),
            "round_ratios": ratios.round(3).tolist(), "speedup": float(np.median(ratios)),
            "speedup_of_medians": float(np.median(old_s) / np.median(new_s))}


def k49_cost(config: TrainConfig, images: int, steps: int) -> dict:
    """Seconds per K49 epoch, extrapolated from `steps` timed training steps on random 49-class data of
    K49's size run through the real input pipeline (shuffle, augmentation, class weights)."""
    import keras
    from kmnist import models
    from kmnist.train import class_weights, make_pipeline
    rng = np.random.default_rng(config.seed)
    x = rng.integers(0, 256, (images, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 49, images).astype(np.uint8)
    n_train = int(round(images * (1 - config.val_fraction)))
    per_epoch = int(np.ceil(n_train / config.batch_size))
    keras.utils.set_random_seed(config.seed)
    model = models.compile_model(models.build(config.arch, 49), config, per_epoch)
    stamps: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            stamps.append(time.perf_counter())

    warmup = min(20, steps)
    t = time.perf_counter()
    pipeline = make_pipeline(x[:n_train], y[:n_train], 49, config, True, class_weights(y[:n_train], 49))
    build_s = time.perf_counter() - t
    fit_start = time.perf_counter()
    model.fit(pipeline, epochs=1, steps_per_epoch=warmup + steps, verbose=0, callbacks=[Clock()])
    per_step = (stamps[-1] - stamps[warmup - 1]) / steps if steps else float("nan")
    return {"images": images, "train_images": n_train, "batch_size": config.batch_size,
            "steps_per_epoch": per_epoch, "timed_steps": steps, "warmup_steps": warmup,
            "seconds_per_step": per_step, "pipeline_build_s": build_s,
            "first_step_s": stamps[0] - fit_start,  # tracing, plus shuffling the epoch's image positions
            "epoch_seconds": per_step * per_epoch, "epochs": config.epochs,
            "total_hours": per_step * per_epoch * config.epochs / 3600, "peak_rss_mb": peak_rss_mb()}


def _call(isolate: bool, fn, *args):
    """Run fn(*args) in a fresh process when isolating, so each peak-memory reading is its own."""
    if not isolate:
        return fn(*args)
    with ProcessPoolExecutor(1, mp_context=get_context("spawn"), max_tasks_per_child=1) as pool:
        return pool.submit(fn, *args).result()


def run_bench(opts: BenchOptions, log: Callable[[str], None] = print) -> dict:
    """Train and measure every architecture, then the studies; return the results document."""
    started = time.time()
    dataset = datasets.load(opts.dataset, opts.data_root)
    isolate = not opts.quick

    def cfg(name: str, **changes) -> TrainConfig:
        config = recipe(name).replace(**{"dataset": dataset.name, "seed": opts.seed, "epochs": opts.epochs or None}
                                      | changes)
        return config.replace(epochs=1, limit=QUICK_LIMIT) if opts.quick else config

    results: dict = {"machine": machine_info(), "dataset": dataset.name, "quick": opts.quick, "epochs": opts.epochs,
                     "peak_memory": "resource.getrusage(RUSAGE_SELF).ru_maxrss of the process that loaded "
                                    "the data, trained, saved, reloaded and measured the model"
                                    + (" (one process per model)" if isolate else
                                       " (all in one process: --quick, so later rows include earlier ones)"),
                     "latency": "single 28x28 image, after 10 warm-up calls; 'predictor' is kmnist.predict."
                                "Predictor (tf.function with a fixed (1,28,28,1) signature, the canvas path), "
                                "'eager' is a plain model(x) call",
                     "models": []}
    calls = 30 if opts.quick else opts.latency_calls
    flagship = opts.archs[-1]
    old = OLD_FLAGSHIP | {"epochs": opts.epochs or OLD_FLAGSHIP["epochs"]}
    for arch in opts.archs:
        paths = {"old": cfg(arch, **old)} if opts.old_path and arch == flagship else {}
        for path, config in (paths | {"preset": cfg(arch)}).items():
            log(f"bench: training and measuring {arch} ({path} path) on {dataset.name}")
            row = _call(isolate, measure_arch, config, dataset, calls, path)
            log(f"bench: {arch} ({path}): accuracy {row['accuracy']:.4f}, {row['train_seconds']:.0f} s, "
                f"{row['train_images_per_s']:.0f} images/s")
            results["models"].append(row)
    base = results["models"][0]
    for row in results["models"]:
        row["train_speed_vs_first"] = row["train_images_per_s"] / base["train_images_per_s"]
        row["train_time_vs_first"] = row["train_seconds"] / base["train_seconds"]
    if opts.old_path:
        log(f"bench: {flagship} speed-up study, old and new path interleaved, {opts.speed_rounds} epochs each")
        rounds = 1 if opts.quick else opts.speed_rounds
        results["speed"] = {"arch": flagship, "old_path": OLD_PATH} | _call(
            isolate, speed_study, cfg(flagship, **OLD_PATH), cfg(flagship), dataset, rounds)
    if opts.imbalance:
        skewed, keep = imbalanced(dataset, opts.seed)
        study = {"arch": flagship, "train_images": int(len(skewed.train.labels)),
                 "keep_share": {dataset.classes[c].char: round(s, 3) for c, s in sorted(keep.items())},
                 "epochs": 1 if opts.quick else opts.imbalance_epochs, "runs": []}
        for weighting in ("none", "balanced"):
            log(f"bench: imbalance study, {flagship} with class_weighting={weighting}")
            row = _call(isolate, measure_arch, cfg(flagship, epochs=study["epochs"], class_weighting=weighting),
                        skewed, calls)
            study["runs"].append({"class_weighting": weighting} | {
                k: row[k] for k in ("accuracy", "balanced_accuracy", "macro_f1", "min_class_recall",
                                    "train_seconds")})
        results["imbalance"] = study
    if opts.k49_cost:
        log("bench: timing K49-preset steps on a generated 49-class stand-in")
        config = preset("k49")
        images, steps = (2_000, 3) if opts.quick else (K49_TRAIN_IMAGES, opts.k49_steps)
        results["k49_cost"] = {"preset": "k49", "arch": config.arch} | _call(
            isolate, k49_cost, config, images, steps)
    results["wall_seconds"] = time.time() - started
    return results


def _fmt_ms(d: dict) -> str:
    return f"{d['p50']:.2f} / {d['p95']:.2f}"


def markdown(results: dict) -> str:
    """The results as markdown tables (what `bench` puts into BENCHMARKS.md)."""
    m = results["machine"]
    first = results["models"][0]["arch"] if results["models"] else "first row"
    lines = [f"Measured {m['when']} on {m['cpu']}, {m['usable_cores']} usable of {m['logical_cores']} logical "
             f"cores (CPU flags: {', '.join(m.get('cpu_flags', [])) or 'no AVX'}), load average "
             f"{m['loadavg_1_5_15']} at start; Python {m['python']}, TensorFlow "
             f"{m['tensorflow']}, Keras {m['keras']}. Dataset `{results['dataset']}`"
             + (", **--quick smoke run (numbers meaningless)**" if results["quick"] else "")
             + (f", every architecture trained {results['epochs']} epochs (`--epochs`), not its preset's number"
                if results.get("epochs") else "")
             + f"; whole bench {results['wall_seconds'] / 60:.1f} min.", "",
             "| arch | path | test acc | balanced acc | macro F1 | epochs | train time | train img/s "
             f"| train img/s ÷ {first} | latency p50 / p95 ms (Predictor) | eager p50 / p95 ms | batch-256 img/s "
             "| params | model file | peak RSS |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
             "| ---: |"]
    for r in results["models"]:
        lines.append(
            f"| `{r['arch']}` | {r.get('path', 'preset')} | {r['accuracy']:.4f} | {r['balanced_accuracy']:.4f} "
            f"| {r['macro_f1']:.4f} | {r['epochs_done']} | {r['train_seconds']:.0f} s | {r['train_images_per_s']:.0f} "
            f"| {r.get('train_speed_vs_first', 1.0):.2f}× "
            f"| {_fmt_ms(r['latency_ms']['predictor'])} | {_fmt_ms(r['latency_ms']['eager'])} "
            f"| {r['batch256_images_per_s']:.0f} | {r['params']:,} | {r['model_bytes'] / 1e6:.2f} MB "
            f"| {r['peak_rss_mb']:.0f} MB |")
    old = next((r for r in results["models"] if r.get("path") == "old"), None)
    if old is not None:
        new = results["models"][-1]
        changed = [f"`{k}` {old['config'][k]} → {v}" for k, v in new["config"].items() if old["config"].get(k) != v]
        lines += ["", f"Rows: `old` is the flagship as it was before issue 9, its recipe on its training path; `preset` "
                  f"is the preset as it stands. They differ in {', '.join(changed) or 'nothing'}. Same data and "
                  f"seed: **{new['train_images_per_s'] / old['train_images_per_s']:.2f}×** the old row's training "
                  f"images/s over the whole training; train time {old['train_seconds']:.0f} → "
                  f"{new['train_seconds']:.0f} s; test accuracy {old['accuracy']:.4f} → {new['accuracy']:.4f}."]
    if "speed" in results:
        sp = results["speed"]
        lines += ["", f"**Speed-up, interleaved** (`{sp['arch']}`, {sp['train_images']} training images): one "
                  f"epoch on the old path, one on the new, in turn, {sp['rounds']} times in one process (after "
                  f"an untimed first epoch each), so load from other processes falls on both alike. Old ÷ new "
                  f"epoch time per round: {', '.join(f'{r:.2f}' for r in sp['round_ratios'])}; median "
                  f"**{sp['speedup']:.2f}×** (median epochs {sp['old_images_per_s']:.0f} → "
                  f"{sp['new_images_per_s']:.0f} images/s, {sp['speedup_of_medians']:.2f}×; load average "
                  f"{sp['loadavg_after']} at the end)."]
    lines += ["", f"Latency: {results['latency']}.", f"Peak memory: {results['peak_memory']}."]
    if "imbalance" in results:
        s = results["imbalance"]
        lines += ["", f"**Imbalance study** (`{s['arch']}`, epochs: {s['epochs']}, {s['train_images']} training "
                  "images kept; share kept per class: "
                  + ", ".join(f"{c} {v:.0%}" for c, v in s["keep_share"].items())
                  + "; balanced test set):", "",
                  "| class_weighting | test acc | balanced acc | macro F1 | worst class recall | train time |",
                  "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for r in s["runs"]:
            lines.append(f"| {r['class_weighting']} | {r['accuracy']:.4f} | {r['balanced_accuracy']:.4f} "
                         f"| {r['macro_f1']:.4f} | {r['min_class_recall']:.4f} | {r['train_seconds']:.0f} s |")
    if "k49_cost" in results:
        k = results["k49_cost"]
        lines += ["", f"**K49 cost estimate** (preset `{k['preset']}`, arch `{k['arch']}`): {k['timed_steps']} "
                  f"steps of batch {k['batch_size']} timed after {k['warmup_steps']} warm-up steps on random "
                  f"49-class images, {k['images']:,} of them"
                  + (" (K49's training-set size)" if k["images"] == K49_TRAIN_IMAGES else "")
                  + f", through the real input pipeline: {k['seconds_per_step'] * 1000:.0f} ms/step "
                  f"× {k['steps_per_epoch']} steps "
                  f"= **{k['epoch_seconds'] / 60:.1f} min per epoch** (extrapolated), "
                  f"{k['epochs']} epochs ≈ **{k['total_hours']:.1f} h**. Not in the per-step time: building the "
                  f"pipeline ({k['pipeline_build_s']:.0f} s, once) and the first step ({k['first_step_s']:.0f} s: "
                  f"tracing, and shuffling the epoch's image positions). Peak RSS {k['peak_rss_mb']:.0f} MB."]
    return "\n".join(lines) + "\n"


def write(results: dict, json_path: Path, markdown_path: Path | None) -> None:
    """Save the results JSON; put the tables between the bench markers of the markdown file (or append)."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    files.write_json(json_path, results)
    if markdown_path is None:
        return
    block = f"{MARK_START}\n{markdown(results)}{MARK_END}"
    text = markdown_path.read_text(encoding="utf-8") if markdown_path.is_file() else "# Benchmarks\n\n"
    if MARK_START in text and MARK_END in text:
        head, rest = text.split(MARK_START, 1)
        text = head + block + rest.split(MARK_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    markdown_path.write_text(text, encoding="utf-8")


def log_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Train and measure architectures side by side; write results JSON and "
                                "the markdown tables.")
    p.add_argument("--dataset", default="kmnist6k")
    p.add_argument("--data-dir", help="data dir (default: $KMNIST_DATA_DIR, else the per-user cache)")
    p.add_argument("--arch", action="append", choices=ARCHS,
                   help="architecture to include, repeatable; the last is the one the studies use "
                        "(default: seed and the flagship)")
    p.add_argument("--quick", action="store_true", help="smoke mode: 1 epoch on a few hundred images (seconds)")
    p.add_argument("--epochs", type=int, help="epochs for every architecture (default: each preset's own)")
    p.add_argument("--no-imbalance", action="store_true", help="skip the class-imbalance study")
    p.add_argument("--no-k49-cost", action="store_true", help="skip the K49 epoch-cost estimate")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "bench.json"), help="results JSON (default: %(default)s)")
    p.add_argument("--markdown", default=str(ROOT / "BENCHMARKS.md"),
                   help="markdown file whose bench section is rewritten; '' for none (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of the tables")
    args = p.parse_args(argv)
    opts = BenchOptions(dataset=args.dataset, data_root=args.data_dir, quick=args.quick,
                        imbalance=not args.no_imbalance, k49_cost=not args.no_k49_cost, epochs=args.epochs or 0)
    if args.arch:
        opts.archs = tuple(args.arch)
    try:
        chatter.load_tensorflow()  # its GPU probing would otherwise start the output
        results = run_bench(opts, log=log_stderr)
    except KmnistError as e:  # a missing dataset, say: one line, as the CLI says it
        print(f"error: {e}", file=sys.stderr)
        return 2
    write(results, Path(args.out), Path(args.markdown) if args.markdown else None)
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=1))
    else:
        print(markdown(results))
        print(f"results in {args.out}" + (f", tables in {args.markdown}" if args.markdown else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
