"""Fine-tune a run with your own drawings: start from its weights, train on its training data plus the drawings
(oversampled), a few epochs, as a new run; report whether it helped and that nothing else got worse.

It also teaches new characters: every K49 character the base run does not know with at least MIN_DRAWINGS
drawings to learn from joins the new run's class table (base classes first, in their order; new ones after,
in K49 order). The output layer grows: the old rows are kept, and each new row starts from the drawings' mean
feature (weight imprinting, Qi et al. 2018), centred on the base training data's mean feature: an uncentred
mean of ReLU features points where every image lies and would read most of the test set as the new class.
The fine-tune that follows rehearses the base training data, so the old characters are kept.

The drawings' test split (every fifth one saved, see kmnist.drawings) is held out: it scores the base model
and the fine-tuned one, beside the base test accuracy before and after, and per new character how many of its
held-out drawings the new run reads right. The new run holds `finetune.json`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from kmnist import KmnistError, classes as cls, datasets, drawings, files, runs


class FinetuneError(KmnistError, ValueError):
    """A fine-tune that cannot start: no model to start from, no drawings, or another class table."""


FINETUNE_FILE = "finetune.json"
SHARE = 0.2  # oversample the drawings to about this share of the training images
MAX_REPEAT = 50  # but repeat each drawing at most this often: a handful of drawings must not take over
LR_SCALE = 0.3  # fine-tuning steps are smaller than the base recipe's peak
MIN_DRAWINGS = 5  # drawings to learn from (training split) a new character needs before it is taught
IMPRINT_SAMPLE = 2000  # base training images whose mean feature centres the imprinted rows


@dataclass
class FinetuneScores:
    test_accuracy: float  # on the base dataset's test set
    drawings_accuracy: float | None  # on the held-out drawings, None when none are held out


@dataclass
class NewCharacter:
    char: str  # the character taught
    index: int  # its class index in the new run
    train_drawings: int  # its drawings learned from
    held_out: int  # its drawings held out
    read_right: int  # of those, the ones the new run reads as this character


@dataclass
class FinetuneReport:
    run: str  # the new run
    base_run: str  # the run it started from
    drawings: str  # the drawings dataset
    train_drawings: int  # drawings trained on (before oversampling)
    held_out: int  # drawings scored, never trained on
    skipped: int  # drawings of characters the base model does not know
    repeat: int  # times each training drawing was repeated
    epochs: int  # fine-tuning epochs done
    before: FinetuneScores  # the base model
    after: FinetuneScores  # the fine-tuned model
    state: str  # completed, cancelled
    new: list[NewCharacter] = field(default_factory=list)  # characters taught, in class order
    seconds: float | None = None  # wall time of the fine-tune's training run

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "FinetuneReport":
        return cls(**data | {k: FinetuneScores(**data[k]) for k in ("before", "after")}
                   | {"new": [NewCharacter(**n) for n in data.get("new", [])]})

    def summary(self) -> str:
        def pct(x):
            return "—" if x is None else f"{x:.1%}"
        taught = "; ".join(f"new {n.char}: {n.read_right}/{n.held_out} "
                           "held-out drawings read right" for n in self.new)
        return (f"test accuracy {pct(self.before.test_accuracy)} → {pct(self.after.test_accuracy)}; "
                f"held-out drawings ({self.held_out}) {pct(self.before.drawings_accuracy)} → "
                f"{pct(self.after.drawings_accuracy)}" + (f"; {taught}" if taught else ""))


def repeats(n_drawings: int, n_train: int, share: float = SHARE, cap: int = MAX_REPEAT) -> int:
    """How often to repeat each drawing so the drawings make about `share` of the training images."""
    if n_drawings == 0:
        return 0
    return int(np.clip(round(share * n_train / n_drawings), 1, cap))


def new_run_id(base: runs.Run) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{base.id[:80]}-ft-{stamp}"


def _accuracy(model, images: np.ndarray, labels: np.ndarray, tta: bool) -> float | None:
    from kmnist.predict import predict_proba
    if not len(images):
        return None
    return float(np.mean(predict_proba(model, images, tta=tta).argmax(axis=1) == labels))


def new_characters(known: list[cls.ClassInfo], found: list[drawings.Drawing],
                   minimum: int = MIN_DRAWINGS) -> list[str]:
    """K49 characters outside `known` with at least `minimum` drawings to learn from, in K49 order."""
    have = {c.char for c in known}
    learn = drawings.counts([d for d in found if d.split == "train"])
    return [c.char for c in cls.k49_classes() if c.char not in have and learn.get(c.char, 0) >= minimum]


def imprint(model, arch: str, num_classes: int, reference: np.ndarray, images: np.ndarray, labels: np.ndarray):
    """A copy of `model` with `num_classes` outputs: the old output rows kept, each new row imprinted.

    A new class's row is the normalised mean of its images' features after subtracting the mean feature of
    `reference` (base training images), scaled to the old rows' mean norm; its bias puts the reference mean
    at the old rows' mean bias. Classes without images keep a zero row and a very low bias.
    """
    from kmnist import models
    from kmnist.preprocess import to_input
    weights = model.get_weights()
    kernel, bias = weights[-2], weights[-1]
    old = kernel.shape[1]
    features = models.feature_model(model)
    centre = features.predict(to_input(reference), batch_size=512, verbose=0).mean(axis=0)
    mine = features.predict(to_input(images), batch_size=512, verbose=0) if len(images) else None
    scale = float(np.linalg.norm(kernel, axis=0).mean())
    new_kernel = np.zeros((kernel.shape[0], num_classes), kernel.dtype)
    new_bias = np.full(num_classes, bias.min() - 10.0, bias.dtype)
    new_kernel[:, :old], new_bias[:old] = kernel, bias
    for c in range(old, num_classes):
        if mine is None or not (labels == c).any():
            continue
        direction = mine[labels == c].mean(axis=0) - centre
        row = scale * direction / max(float(np.linalg.norm(direction)), 1e-9)
        new_kernel[:, c], new_bias[c] = row, bias.mean() - float(row @ centre)
    grown = models.build(arch, num_classes)
    grown.set_weights(weights[:-2] + [new_kernel, new_bias])
    return grown


def finetune(base_id: str, drawings_name: str = drawings.NAME, epochs: int = 3, seed: int | None = None,
             run_id: str | None = None, data_root: Path | None = None, runs_root: Path | None = None,
             callbacks=()) -> FinetuneReport:
    """Train a new run from `base_id`'s weights on its training data plus the drawings, teaching it every new
    character with enough drawings; score before and after."""
    import time
    from kmnist.predict import predict_proba
    from kmnist.train import train
    base = runs.get_run(base_id)
    if not base.has_model:
        raise FinetuneError(f"run {base_id!r} has no model to fine-tune ({base.state})")
    new = new_characters(base.classes, drawings.drawings(drawings_name, data_root))
    table = cls.extend(base.classes, new)
    mine = drawings.for_classes(table, drawings_name, data_root)
    held = mine.split == "test"
    if not (~held).any():
        raise FinetuneError(f"no drawings to learn from in {drawings.folder(drawings_name, data_root)}"
                         + (f" ({mine.skipped} show characters run {base.id} does not know and have fewer than "
                            f"{MIN_DRAWINGS} to learn from)" if mine.skipped else "")
                         + ": confirm or correct drawings on the Draw page first")
    dataset = datasets.load(base.config.dataset, data_root)
    here = [c.char for c in dataset.classes]
    if here != [c.char for c in base.classes][: len(here)]:
        raise FinetuneError(f"dataset {dataset.name} here has other classes than run {base.id} was trained on")
    model = base.load_model()
    tta = base.config.tta
    stored = base.test_predictions()
    before_test = (float(np.mean(stored == dataset.test.labels)) if stored is not None
                   and len(stored) == len(dataset.test.labels)
                   else _accuracy(model, dataset.test.images, dataset.test.labels, tta))
    before = FinetuneScores(before_test, _accuracy(model, mine.images[held], mine.labels[held], tta))
    if len(table) > len(base.classes):
        rng = np.random.default_rng(base.config.seed)
        reference = dataset.train.images[rng.permutation(len(dataset.train.labels))[:IMPRINT_SAMPLE]]
        model = imprint(model, base.config.arch, len(table), reference, mine.images[~held], mine.labels[~held])

    n_train = int(len(dataset.train.labels) * (1 - base.config.val_fraction))
    repeat = repeats(int((~held).sum()), n_train)
    extra = (np.repeat(mine.images[~held], repeat, axis=0), np.repeat(mine.labels[~held], repeat))
    lr = base.config.learning_rate * LR_SCALE
    # float32: bfloat16 pays only where the CPU computes it natively (AMX); elsewhere it is emulated and made
    # a 3-epoch fine-tune 25x slower (AMD EPYC here). The saved model is float32 either way.
    config = base.config.replace(epochs=epochs, seed=seed, learning_rate=lr, warmup_epochs=0.0, precision="float32")
    grown = datasets.Dataset(dataset.name, table, dataset.train, dataset.test)  # labels keep their indices
    started = time.time()
    run = train(config, dataset=grown, run_id=run_id or new_run_id(base), runs_root=runs_root, data_root=data_root,
                callbacks=callbacks, start_from=model, extra=extra)
    seconds = time.time() - started
    tuned = run.load_model()
    predicted = (predict_proba(tuned, mine.images[held], tta=tta).argmax(axis=1) if held.any()
                 else np.zeros(0, np.int64))
    truth = mine.labels[held]
    after = FinetuneScores(run.metrics["accuracy"], float(np.mean(predicted == truth)) if held.any() else None)
    taught = [NewCharacter(c.char, c.index, int(((mine.labels == c.index) & ~held).sum()),
                           int((truth == c.index).sum()), int(((truth == c.index) & (predicted == c.index)).sum()))
              for c in table[len(base.classes):]]
    report = FinetuneReport(run.id, base.id, drawings_name, int((~held).sum()), int(held.sum()), mine.skipped,
                            repeat, run.metrics.get("epochs_done", epochs), before, after, run.metrics["state"],
                            taught, round(seconds, 1))
    files.write_json(run.path / FINETUNE_FILE, report.to_json())
    return report


def read_report(run: runs.Run) -> FinetuneReport | None:
    """The fine-tune report of a run, None for runs that were not fine-tuned (or are still training)."""
    data = files.read_json(run.path / FINETUNE_FILE)
    return FinetuneReport.from_json(data) if isinstance(data, dict) else None


def new_character_scores(run: runs.Run) -> list[dict]:
    """A grown run's new characters scored on their held-out drawings, as they have no test images: one row
    each (class, character, romaji, 字母, held-out drawings, read right, recall); [] for other runs."""
    rep = read_report(run)
    if rep is None:
        return []
    return [{"class": n.index, "char": n.char, "romaji": cls.reading(n.char), "字母": cls.KANJI.get(n.char, ""),
             "held-out drawings": n.held_out, "read right": n.read_right,
             "recall": n.read_right / n.held_out if n.held_out else None} for n in rep.new]
