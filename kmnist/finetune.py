"""Fine-tune a run with your own drawings: start from its weights, train on its training data plus the drawings
(oversampled), a few epochs, as a new run; report whether it helped and that nothing else got worse.

The drawings' test split (every fifth one saved, see kmnist.drawings) is held out: it scores the base model
and the fine-tuned one, beside the base test accuracy before and after. The new run holds `finetune.json`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from kmnist import KmnistError, datasets, drawings, files, runs


class FinetuneError(KmnistError, ValueError):
    """A fine-tune that cannot start: no model to start from, no drawings, or another class table."""


FINETUNE_FILE = "finetune.json"
SHARE = 0.2  # oversample the drawings to about this share of the training images
MAX_REPEAT = 50  # but repeat each drawing at most this often: a handful of drawings must not take over
LR_SCALE = 0.3  # fine-tuning steps are smaller than the base recipe's peak


@dataclass
class FinetuneScores:
    test_accuracy: float  # on the base dataset's test set
    drawings_accuracy: float | None  # on the held-out drawings, None when none are held out


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

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "FinetuneReport":
        return cls(**data | {k: FinetuneScores(**data[k]) for k in ("before", "after")})

    def summary(self) -> str:
        def pct(x):
            return "—" if x is None else f"{x:.1%}"
        return (f"test accuracy {pct(self.before.test_accuracy)} → {pct(self.after.test_accuracy)}; "
                f"held-out drawings ({self.held_out}) {pct(self.before.drawings_accuracy)} → "
                f"{pct(self.after.drawings_accuracy)}")


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


def finetune(base_id: str, drawings_name: str = drawings.NAME, epochs: int = 3, seed: int | None = None,
             run_id: str | None = None, data_root: Path | None = None, runs_root: Path | None = None,
             callbacks=()) -> FinetuneReport:
    """Train a new run from `base_id`'s weights on its training data plus the drawings; score before and after."""
    from kmnist.train import train
    base = runs.get_run(base_id)
    if not base.has_model:
        raise FinetuneError(f"run {base_id!r} has no model to fine-tune ({base.state})")
    mine = drawings.for_classes(base.classes, drawings_name, data_root)
    held = mine.split == "test"
    if not (~held).any():
        raise FinetuneError(f"no drawings to learn from in {drawings.folder(drawings_name, data_root)}"
                         + (f" ({mine.skipped} show characters run {base.id} does not know)" if mine.skipped else "")
                         + ": confirm or correct drawings on the Draw page first")
    dataset = datasets.load(base.config.dataset, data_root)
    if [c.char for c in dataset.classes] != [c.char for c in base.classes]:
        raise FinetuneError(f"dataset {dataset.name} here has other classes than run {base.id} was trained on")
    model = base.load_model()
    tta = base.config.tta
    stored = base.test_predictions()
    before_test = (float(np.mean(stored == dataset.test.labels)) if stored is not None
                   and len(stored) == len(dataset.test.labels)
                   else _accuracy(model, dataset.test.images, dataset.test.labels, tta))
    before = FinetuneScores(before_test, _accuracy(model, mine.images[held], mine.labels[held], tta))

    n_train = int(len(dataset.train.labels) * (1 - base.config.val_fraction))
    repeat = repeats(int((~held).sum()), n_train)
    extra = (np.repeat(mine.images[~held], repeat, axis=0), np.repeat(mine.labels[~held], repeat))
    lr = base.config.learning_rate * LR_SCALE
    config = base.config.replace(epochs=epochs, seed=seed, learning_rate=lr, warmup_epochs=0.0)
    run = train(config, dataset=dataset, run_id=run_id or new_run_id(base), runs_root=runs_root,
                callbacks=callbacks, start_from=model, extra=extra)
    tuned = run.load_model()
    after = FinetuneScores(run.metrics["accuracy"], _accuracy(tuned, mine.images[held], mine.labels[held], tta))
    report = FinetuneReport(run.id, base.id, drawings_name, int((~held).sum()), int(held.sum()), mine.skipped,
                            repeat, run.metrics.get("epochs_done", epochs), before, after, run.metrics["state"])
    files.write_json(run.path / FINETUNE_FILE, report.to_json())
    return report


def read_report(run: runs.Run) -> FinetuneReport | None:
    """The fine-tune report of a run, None for runs that were not fine-tuned (or are still training)."""
    data = files.read_json(run.path / FINETUNE_FILE)
    return FinetuneReport.from_json(data) if isinstance(data, dict) else None
