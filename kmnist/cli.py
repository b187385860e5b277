"""The command line: `python -m kmnist COMMAND --help`."""
from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from pathlib import Path

from kmnist import KmnistError, chatter, datasets, runs

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's info and warnings off the terminal; errors stay


def _print_json(data) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=1))


def _finished(args, data: dict, line: str, state: str) -> int:
    """A training command's result, as JSON or one line; exit 0 when it completed, else 3."""
    _print_json(data) if args.json else print(line)
    return 0 if state == "completed" else 3


class UsageError(KmnistError):
    """Options that do not make a valid request."""


# Failures of the machine rather than of kmnist: the user fixes them (frees space, changes permissions).
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO}


def _run_or_active(run_id: str | None) -> runs.Run:
    if run_id is not None:  # `--run ""` is a bad id, not a request for the active model
        return runs.get_run(run_id)
    run = runs.active_run()
    if run is None:
        raise runs.RunNotFoundError("no active model: train one (`python -m kmnist train`) or pass --run")
    return run


def cmd_datasets(args) -> int:
    found = datasets.list_datasets(args.data_dir)
    if args.json:
        _print_json([{"name": s.name, "folder": str(s.folder), "present": s.present, "missing": s.missing,
                      "trainable": s.trainable} for s in found])
        return 0
    print(f"data dir: {datasets.data_dir(args.data_dir)}")
    for s in found:
        state = datasets.availability(s)
        print(f"  {s.name:<12} {state:<12} {s.title}")
        for m in s.missing if s.present else []:
            print(f"      missing {m}")
    return 0


def cmd_download(args) -> int:
    from tqdm import tqdm
    bars: dict[str, tqdm] = {}

    def progress(name, done, total):
        bar = bars.get(name) or bars.setdefault(name, tqdm(total=total, unit="B", unit_scale=True, desc=name))
        bar.update(done - bar.n)

    try:
        got = datasets.download(args.name, args.data_dir, progress)
    finally:
        for bar in bars.values():
            bar.close()
    folder = datasets.data_dir(args.data_dir) / args.name
    print(f"{args.name}: {len(got)} file(s) downloaded, all files present and verified in {folder}")
    return 0


def cmd_train(args) -> int:
    from kmnist.config import TrainConfig, preset, recipe
    from kmnist.files import read_json
    from kmnist.train import train
    try:
        if args.config:
            data = read_json(Path(args.config))
            if not isinstance(data, dict):
                raise UsageError(f"{args.config} is missing or not a training config (a JSON object of TrainConfig fields)")
            base = TrainConfig.from_json(data)
        else:
            base = preset(args.preset) if args.preset else recipe(args.arch or "seed")
        config = base.replace(
            arch=args.arch, dataset=args.dataset, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
            limit=args.limit, strategy=args.strategy, class_weighting=args.class_weighting)
    except ValueError as e:  # the config checks its own fields: a bad option, not a bug
        raise UsageError(str(e)) from None
    callbacks = [] if args.json else [_ProgressPrinter()]
    run = train(config, run_id=args.run_id, data_root=args.data_dir, callbacks=callbacks, resume=args.resume)
    if not isinstance(run, runs.Run):  # a multi-worker cluster's worker other than the chief: no run of its own
        return _finished(args, run.to_json(), f"worker {run.worker} of {run.workers} {run.state} after "
                         f"{run.epochs_done} epochs; the chief (worker 0) writes run {run.run_id}", run.state)
    m = run.metrics
    summary = {"run": run.id, "state": m["state"], "accuracy": m["accuracy"],
               "balanced_accuracy": m["balanced_accuracy"], "macro_f1": m["macro_f1"],
               "train_seconds": m["train_seconds"]}
    return _finished(args, summary, f"run {run.id} {m['state']}: test accuracy {m['accuracy']:.4f}, balanced "
                     f"accuracy {m['balanced_accuracy']:.4f}, macro F1 {m['macro_f1']:.4f}, "
                     f"{m['train_seconds']:.0f} s; files in {run.path}", m["state"])


class _ProgressPrinter:
    """Keras callback printing one line per epoch (defined lazily to keep --help fast)."""

    def __new__(cls):
        import keras

        class Printer(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                text = " ".join(f"{k} {v:.4f}" for k, v in (logs or {}).items())
                print(f"epoch {epoch + 1}/{self.params.get('epochs')}: {text}", flush=True)

        return Printer()


def cmd_finetune(args) -> int:
    from kmnist.finetune import finetune
    callbacks = [] if args.json else [_ProgressPrinter()]
    rep = finetune(args.run, args.drawings, epochs=args.epochs, seed=args.seed, run_id=args.run_id,
                   data_root=args.data_dir, callbacks=callbacks)
    return _finished(args, rep.to_json(), f"run {rep.run} {rep.state}, fine-tuned from {rep.base_run} with "
                     f"{rep.train_drawings} drawings (each seen {rep.repeat}x per epoch, {rep.epochs} epochs): "
                     f"{rep.summary()}", rep.state)


def cmd_drawings_add(args) -> int:
    from kmnist import classes as cls, drawings
    from kmnist.preprocess import DEFAULT_FRAMING
    run = runs.active_run()  # its framing is the canvas's; its class table starts a new drawings folder
    saved = drawings.add_pictures([Path(p) for p in args.images], args.char,
                                  run.framing if run else DEFAULT_FRAMING, run.id if run else "",
                                  run.classes if run else cls.k49_classes(), args.drawings, args.data_dir)
    if args.json:
        _print_json([{"file": f, "id": d.id, "char": d.char, "split": d.split} for f, d in zip(args.images, saved)])
    else:
        held = sum(d.split == "test" for d in saved)
        print(f"saved {len(saved)} drawings of {saved[0].char} to {drawings.folder(args.drawings, args.data_dir)}"
              f" ({len(saved) - held} to learn from, {held} held out)")
    return 0


def cmd_drawings_list(args) -> int:
    from kmnist import drawings
    rows = drawings.split_counts(drawings.drawings(args.drawings, args.data_dir))
    if args.json:
        _print_json(rows)
    elif not rows:
        print(f"no drawings in {drawings.folder(args.drawings, args.data_dir)}")
    else:
        print("char  romaji          train  test")
        for r in rows:
            print(f"{r['char']:<4}  {r['romaji']:<14}  {r['train']:>5}  {r['test']:>4}")
        print(f"{sum(r['train'] + r['test'] for r in rows)} drawings of {len(rows)} characters")
    return 0


def cmd_forms(args) -> int:
    from kmnist import tutor
    rows = []
    for run_id in args.run or [runs.active_run_id()]:
        run = runs.get_run(run_id)
        forms = tutor.build_forms(run, run.load_model(), datasets.load_images(run.config.dataset, "train", args.data_dir),
                                  datasets.load_labels(run.config.dataset, "train", args.data_dir), args.per_class)
        rows.append({"run": run.id, "forms": len(forms.images), "file": str(tutor.save_forms(forms, Path(args.out)))})
    if args.json:
        _print_json(rows)
    else:
        for r in rows:
            print(f"{r['run']}: {r['forms']} forms in {r['file']}")
    return 0


def cmd_evaluate(args) -> int:
    from kmnist.evaluate import VALIDATION_KEYS, labels_for_run, report
    from kmnist.predict import predict_proba
    run = _run_or_active(args.run)
    name = args.dataset or run.config.dataset
    images = datasets.load_images(name, "test", args.data_dir)
    labels = datasets.load_labels(name, "test", args.data_dir)
    # Another class table maps by character (a KMNIST run on K49 data) or is refused, naming both tables.
    y_true, known = labels_for_run(labels, datasets.load_classes(name, args.data_dir), run.classes,
                                   f"run {run.id}", f"dataset {name}")
    y_pred = predict_proba(run.load_model(), images[known], tta=run.config.tta).argmax(axis=1)
    rep = report(y_true, y_pred, run.classes)
    validation = {k: run.metrics.get(k) for k in VALIDATION_KEYS}  # from training: the split is the run's own
    if args.json:
        _print_json({"run": run.id, "dataset": name, "images": int(known.sum()), "dataset_images": len(labels),
                     "accuracy": rep.accuracy, "balanced_accuracy": rep.balanced_accuracy,
                     "macro_precision": rep.macro_precision, "macro_recall": rep.macro_recall,
                     "macro_f1": rep.macro_f1, "weighted_f1": rep.weighted_f1,
                     "classes_present": rep.classes_present, **validation,
                     "per_class": [{k: getattr(c, k) for k in ("index", "char", "precision", "recall", "f1",
                                                               "support")} for c in rep.per_class]})
    else:
        print(f"run {run.id} on {name} test ({len(labels)} images)\n")
        if not known.all():
            print(f"scored on the {known.sum()} images of the {rep.classes_present} characters the run knows, "
                  "matched by character\n")
        print(rep.text)
        print(f"accuracy {rep.accuracy:.4f}  balanced accuracy {rep.balanced_accuracy:.4f}  "
              f"macro F1 {rep.macro_f1:.4f} (over the {rep.classes_present} classes with test images)")
        if validation["val_accuracy"] is not None:
            print(f"validation (at the end of training): accuracy {validation['val_accuracy']:.4f}  "
                  f"balanced accuracy {validation['val_balanced_accuracy']:.4f}  loss {validation['val_loss']:.4f}")
    return 0


def cmd_predict(args) -> int:
    import numpy as np
    from kmnist import unknown
    from kmnist.predict import predict_proba, top_k
    from kmnist.preprocess import BadImageError, EmptyImageError, prepare
    run = _run_or_active(args.run)
    model = run.load_model()
    rule = unknown.load(run)
    ready, failed = [], 0
    for path in args.images:
        try:
            ready.append((path, prepare(Path(path), run.framing)))
        except (OSError, BadImageError, EmptyImageError) as e:
            failed += 1
            print(f"{path}: {e}", file=sys.stderr)
    if rule is None and ready:
        print(f"note: run {run.id!r} has no 'none of these' rule (\"unknown\": null); make one with "
              f"`python -m kmnist calibrate --run {run.id}`", file=sys.stderr)
    # One batch call: model.predict sets up a loop per call, which would dominate one image at a time.
    probs, scores = [], []
    if ready:
        images = np.stack([image for _, image in ready])
        if rule is None:
            probs, scores = predict_proba(model, images), [None] * len(ready)
        else:
            probs, features = unknown.read(model, images)
            scores = rule.scores(features)
    results = [{"file": str(path), "top": [
        {"index": g.index, "char": g.char, "prob": round(g.prob, 6)} for g in top_k(p, run.classes)],
        "unknown": None if score is None else bool(rule.flags(score)),
        "unknown_score": None if score is None else round(float(score), 3)}
        for (path, _), p, score in zip(ready, probs, scores)]
    if args.json:
        _print_json(results)
    else:
        for r in results:
            none = f"  (looks like none of the {len(run.classes)} characters it knows)" if r["unknown"] else ""
            print(f"{r['file']}: " + "  ".join(f"{g['char']} {g['prob']:.3f}" for g in r["top"]) + none)
    return 1 if failed else 0


def cmd_calibrate(args) -> int:
    from kmnist import unknown
    from kmnist.export import export_or_record
    if not 0 < args.keep <= 1:
        raise UsageError(f"--keep is a share of the validation images, above 0 and at most 1 (got {args.keep})")
    run = _run_or_active(args.run)
    model = run.load_model()
    rule = unknown.calibrate(run, model, keep=args.keep, data_root=args.data_dir)
    export_or_record(model, run.path)  # model.onnx (and the browser's copy) with the rule's score
    info = unknown.load(run).info
    if args.json:
        _print_json(info)
    else:
        print(f"{run.id}: 'none of these' above a score of {rule.threshold:.1f}, keeping "
              f"{info['validation_kept']:.1%} of {info['validation_images']} validation images; model.onnx "
              f"re-exported with the score ({info['seconds']:.0f} s)")
    return 0


def _run_row(run: runs.Run, active: str | None) -> dict:
    status, m = run.status, run.metrics
    try:
        arch, dataset, problem = run.config.arch, run.config.dataset, None
    except runs.RunError as e:  # one broken run must not hide the others
        arch, dataset, problem = "?", "?", str(e)
    state = runs.judge(status)
    return {"id": run.id, "active": run.id == active, "shipped": run.shipped, "state": state,
            "at": runs.stopped_at(status) if state in ("interrupted", *runs.ACTIVE_STATES) else None,
            "epochs_done": m.get("epochs_done", status.get("epochs_done")), "arch": arch, "dataset": dataset,
            "accuracy": m.get("accuracy"), "balanced_accuracy": m.get("balanced_accuracy"), "problem": problem}


def cmd_export(args) -> int:
    from kmnist.export import export_run
    info = export_run(_run_or_active(args.run))  # a run without a model or a mismatch: KmnistError, one line
    if args.json:
        _print_json(info)
    else:
        print(f"{info['file']}: {info['bytes'] / 1e6:.1f} MB in {info['seconds']:.1f} s, max difference from "
              f"Keras {info['max_abs_diff']:.2g} on {info['check_images']} images")
    return 0


def cmd_runs(args) -> int:
    active = runs.active_run_id()
    rows = [_run_row(r, active) for r in runs.list_runs()]
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        print(f"no runs yet in {runs.runs_dir()}")
    for r in rows:
        acc = f"{r['accuracy']:.4f}" if isinstance(r["accuracy"], (int, float)) else "-"
        print(f"{'*' if r['active'] else ' '} {r['id']:<40} {r['state']:<11} {r['arch']:<10} {r['dataset']:<10} {acc}"
              + ("  (shipped)" if r["shipped"] else "") + (f"  at {r['at']}" if r["at"] else "")
              + (f"  {r['problem']}" if r["problem"] else ""))
    return 0


def cmd_activate(args) -> int:
    run = runs.set_active(args.run)
    print(f"active model: {run.label()}")
    return 0


def cmd_embed(args) -> int:
    import time
    from kmnist import embed
    if args.run is not None:
        runs.validate_run_id(args.run)  # before any cache path is built from it
    names = args.dataset or [embed.kuzushiji_dataset(args.data_dir), "mnist"]
    run_id = (args.run or runs.active_run_id() or "") if args.space == "features" else ""
    started = time.time()

    def progress(stage, done):
        print(f"[{time.time() - started:6.1f} s] {stage}", file=sys.stderr, flush=True)

    rows = []
    for name in names:
        config = embed.EmbedConfig(dataset=name, space=args.space, run_id=run_id, sample=args.sample,
                                   splits=tuple(args.splits or ()), pca=args.pca, n_neighbors=args.neighbors,
                                   min_dist=args.min_dist, seed=args.seed)
        emb = embed.get(config, args.data_dir, progress, force=args.force)
        path = embed.save(emb, Path(args.out)) if args.out else emb.source
        rows.append({"dataset": name, "space": args.space, "run": run_id or None, "points": len(emb.indices),
                     "splits": list(emb.splits), "seconds": round(emb.seconds, 1), "file": str(path)})
    if args.json:
        _print_json(rows)
    else:
        for r in rows:
            print(f"{r['dataset']} {r['space']}: {r['points']:,} points from {'+'.join(r['splits'])} "
                  f"({r['seconds']} s to compute) in {r['file']}")
    return 0


def parser() -> argparse.ArgumentParser:
    from kmnist.config import PRESETS
    from kmnist.models import ARCHITECTURES
    p = argparse.ArgumentParser(prog="python -m kmnist", description="Kuzushiji recognition: data, training, "
                                "evaluation and prediction.")
    sub = p.add_subparsers(dest="command", required=True)

    def add(name, func, help_text):
        s = sub.add_parser(name, help=help_text, description=help_text)
        s.set_defaults(func=func)
        return s

    def data_dir(s):
        s.add_argument("--data-dir", help="data dir (default: $KMNIST_DATA_DIR, else the per-user cache)")

    def json_flag(s):
        s.add_argument("--json", action="store_true", help="print machine-readable JSON")

    s = add("datasets", cmd_datasets, "list the datasets, what is present and what is missing")
    data_dir(s), json_flag(s)
    s = add("download", cmd_download, "download an official dataset from CODH (MD5-checked)")
    s.add_argument("name", choices=list(datasets.OFFICIAL))
    data_dir(s)
    s = add("train", cmd_train, "train a model and write a run directory")
    s.add_argument("--arch", choices=list(ARCHITECTURES), help="architecture (default: the preset's, else seed)")
    s.add_argument("--preset", choices=list(PRESETS), help="recipe to start from (default: the recipe for --arch: the seed study's for "
                   "seed, the flagship's for the ResNets)")
    s.add_argument("--config", help="a TrainConfig JSON to start from instead of a preset, e.g. a run's "
                   "config.json; the options below override it")
    s.add_argument("--dataset", help="dataset name (default: the preset's, kmnist6k but for k49)")
    s.add_argument("--epochs", type=int)
    s.add_argument("--batch-size", type=int)
    s.add_argument("--seed", type=int)
    s.add_argument("--limit", type=int, help="use only the first N training images")
    s.add_argument("--class-weighting", choices=["none", "balanced"])
    s.add_argument("--strategy", choices=["default", "mirrored", "multi-worker"],
                   help="tf.distribute strategy (multi-worker reads TF_CONFIG)")
    s.add_argument("--run-id", help="name for the run directory (default: dataset-arch-time)")
    s.add_argument("--resume", action="store_true", help="multi-worker: continue run --run-id from its last "
                   "completed epoch (every worker restarted with the same command and --resume)")
    data_dir(s), json_flag(s)
    s = add("finetune", cmd_finetune, "fine-tune a run with your own drawings (a dataset folder such as "
            "my-drawings): a new run, scored before and after")
    s.add_argument("--run", required=True, help="run to start from")
    s.add_argument("--with", dest="drawings", required=True, help="drawings dataset in the data dir (e.g. my-drawings)")
    s.add_argument("--epochs", type=int, default=3)
    s.add_argument("--seed", type=int, help="seed (default: the base run's)")
    s.add_argument("--run-id", help="name for the new run (default: BASE-ft-time)")
    data_dir(s), json_flag(s)
    s = add("drawings", None, "your drawings dataset: import pictures as drawings, count them")
    what = s.add_subparsers(dest="action", required=True)
    a = what.add_parser("add", help="save pictures (PNG/JPG, any size) as drawings of one character, framed as "
                        "the canvas frames a drawing; every fifth drawing saved is held out")
    a.set_defaults(func=cmd_drawings_add)
    a.add_argument("images", nargs="+", help="image files in any format predict reads")
    a.add_argument("--char", required=True, help="the character they show: one of the 49, or its romaji (wi)")
    l_ = what.add_parser("list", help="drawings per character and split (train, held-out test)")
    l_.set_defaults(func=cmd_drawings_list)
    for sub_parser in (a, l_):
        sub_parser.add_argument("--with", dest="drawings", default="my-drawings",
                                help="drawings dataset in the data dir (default: %(default)s)")
        data_dir(sub_parser), json_flag(sub_parser)
    s = add("forms", cmd_forms, "rank each class's training images by typicality in a run's feature space and "
            "keep the most typical (the Draw page's forms to copy)")
    s.add_argument("--run", nargs="+", help="runs (default: the active model)")
    s.add_argument("--per-class", type=int, default=32)
    s.add_argument("--out", default=str(Path("assets") / "forms"), help="folder (default: %(default)s)")
    data_dir(s), json_flag(s)
    s = add("evaluate", cmd_evaluate, "score a run on a dataset's test set")
    s.add_argument("--run", help="run id (default: the active model)")
    s.add_argument("--dataset", help="dataset (default: the one the run trained on)")
    data_dir(s), json_flag(s)
    s = add("predict", cmd_predict, "recognise characters in PNG/JPG files")
    s.add_argument("images", nargs="+", help="image files: dataset-style (light on dark) or drawings")
    s.add_argument("--run", help="run id (default: the active model)")
    json_flag(s)
    s = add("export", cmd_export, "export a run's model to model.onnx (checked against Keras) for the browser")
    s.add_argument("--run", help="run id (default: the active model)")
    json_flag(s)
    s = add("calibrate", cmd_calibrate, "make a run's 'none of these' rule on its validation split (and re-export)")
    s.add_argument("--run", help="run id (default: the active model)")
    s.add_argument("--keep", type=float, default=0.95, help="share of validation images to keep as known")
    data_dir(s), json_flag(s)
    s = add("runs", cmd_runs, "list training runs (* marks the active model)")
    json_flag(s)
    s = add("activate", cmd_activate, "make a run the active model")
    s.add_argument("run")
    s = add("embed", cmd_embed, "UMAP maps of dataset images (PCA, then seeded UMAP), cached on disk")
    s.add_argument("--dataset", nargs="+", help="datasets to map (default: the Kuzushiji one here, and mnist)")
    s.add_argument("--space", choices=["pixels", "features"], default="pixels",
                   help="raw pixels, or a run's penultimate-layer features")
    s.add_argument("--run", help="run whose features are mapped (default: the active model)")
    s.add_argument("--sample", type=int, default=16000, help="points per map at most")
    s.add_argument("--splits", nargs="+", choices=list(datasets.SPLITS),
                   help="splits to sample (default: train, plus test when train has fewer than --sample)")
    s.add_argument("--pca", type=int, default=50, help="PCA components before UMAP (0 = none)")
    s.add_argument("--neighbors", type=int, default=15, help="UMAP n_neighbors")
    s.add_argument("--min-dist", type=float, default=0.1, help="UMAP min_dist")
    s.add_argument("--seed", type=int, default=0, help="seeds the sample, PCA and UMAP")
    s.add_argument("--force", action="store_true", help="recompute even when a stored map exists")
    s.add_argument("--out", help="also write the map file here (e.g. assets/embeddings to ship it)")
    data_dir(s), json_flag(s)
    return p


def _uses_tensorflow(args) -> bool:
    """Whether the command loads a Keras model (embed only to map a run's features)."""
    if args.command == "embed":
        return args.space == "features"
    return args.command not in ("datasets", "download", "runs")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if _uses_tensorflow(args):
            chatter.load_tensorflow()  # its GPU probing would otherwise start every command's output
        return args.func(args)
    except KmnistError as e:  # only the package's own errors are one line: a bug keeps its traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno not in ENVIRONMENT_ERRNOS:
            raise
        print(f"error: {e.strerror}" + (f": {e.filename}" if e.filename else ""), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
