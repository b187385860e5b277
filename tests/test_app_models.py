"""AppTests of model management: any run with a model can be made active from Evaluation or Training, with
a confirmation when it scores lower; the shipped default comes back in one click; every run is named with
its true state and progress."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from kmnist import files, runs
from tests.apptest import metric, open_page, texts
from tests.conftest import SEED_RUN


def button(at: AppTest, key: str):
    found = [b for b in at.button if b.key == key]
    assert found, f"no button {key!r}; buttons: {[(b.key, b.label) for b in at.button]}"
    return found[0]


def default() -> runs.Run:
    return runs.get_run(runs.DEFAULT_POINTER.read_text().strip())


def test_activating_a_lower_scoring_run_asks_first(no_data):
    at = open_page("evaluation")
    at.selectbox(key="eval_run").select(SEED_RUN).run()
    button(at, "eval_activate").click().run()
    assert runs.active_run_id() == default().id, "a lower-scoring run is not activated without asking"
    ask = texts(at.warning)
    # Choices cite validation: the shipped runs recorded validation scores.
    want = (f"validation accuracy {default().metrics['val_accuracy']:.1%} → "
            f"{runs.get_run(SEED_RUN).metrics['val_accuracy']:.1%}")
    assert want in ask and "make kmnist6k-seed the active model anyway?" in ask, ask
    button(at, "eval_activate-no").click().run()
    assert runs.active_run_id() == default().id and not at.warning, "Keep leaves the active model alone"
    button(at, "eval_activate").click().run()
    button(at, "eval_activate-yes").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert runs.active_run_id() == SEED_RUN
    assert "kmnist6k-seed is the active model" in texts(at.success)
    assert SEED_RUN in texts(at.sidebar.markdown), "the sidebar names the new active model"


def test_back_to_the_shipped_default_from_training(no_data):
    runs.set_active(SEED_RUN)
    at = open_page("training")
    table = at.dataframe[0].value
    assert table.loc[table["active"], "run"].tolist() == [SEED_RUN], table
    back = button(at, "runs_default")
    assert default().id in back.label and back.label.startswith("Back to the shipped default")
    back.click().run()
    assert not at.warning, "the default scores higher: no question asked"
    assert runs.active_run_id() == default().id
    assert f"{default().id} is the active model" in texts(at.success)


def test_any_run_can_be_picked_on_training(no_data):
    at = open_page("training")
    labels = at.selectbox(key="runs_pick").options
    shipped = [r.id for r in runs.list_runs() if r.shipped]
    assert len(labels) == len(shipped) >= 4 and all("completed" in x and "epoch " in x for x in labels), labels
    at.selectbox(key="runs_pick").select("kmnist6k-resnet-bn-w48").run()
    button(at, "runs_activate").click().run()
    assert "make kmnist6k-resnet-bn-w48 the active model anyway?" in texts(at.warning), "the w48 run scores lower on validation"
    assert not at.success, "no note about the active default sits under the question as if it answered it"
    button(at, "runs_activate-yes").click().run()
    assert runs.active_run_id() == "kmnist6k-resnet-bn-w48"


def cancelled_run(runs_dir: Path) -> runs.Run:
    """A copy of the shipped seed run's scores, as a training cancelled 10 batches into its first epoch leaves it."""
    src = runs.get_run(SEED_RUN).path
    path = runs_dir / "tiny-cancelled"
    path.mkdir(parents=True)
    for name in (runs.CONFIG_FILE, runs.CLASSES_FILE, runs.METRICS_FILE):
        (path / name).write_bytes((src / name).read_bytes())
    files.write_json(path / runs.STATUS_FILE, {"state": "cancelled", "epoch": 1, "epochs": 3, "batch": 10,
                                                "batches": 43})
    return runs.get_run("tiny-cancelled")


def test_a_cancelled_job_says_how_many_epochs_it_trained(runs_dir, no_data):
    run = cancelled_run(runs_dir)
    files.write_json(run.path / runs.METRICS_FILE, run.metrics | {"epochs_done": 0.233})
    (runs_dir / ".jobs").mkdir()
    files.write_json(runs_dir / ".jobs" / f"{run.id}.json", {"run_id": run.id, "pid": None, "started": 1.0})
    trained = metric(open_page("training"), "Epochs trained")
    assert trained.value == f"0.233 of {run.config.epochs}", "short enough for its column"
    assert trained.proto.help == "Stopped at epoch 1 of 3, batch 10 of 43"


def test_a_cancelled_run_is_named_with_its_state_and_true_progress(runs_dir, no_data):
    run = cancelled_run(runs_dir)
    at = open_page("training")
    table = at.dataframe[0].value
    row = table[table["run"] == run.id].iloc[0]
    assert row["state"] == "cancelled" and row["trained"] == "epoch 1 of 3, batch 10 of 43", row
    at.switch_page("pages/evaluation.py").run()
    label = next(o for o in at.selectbox(key="eval_run").options if o.startswith(run.id))
    assert "cancelled" in label and "epoch 1 of 3, batch 10 of 43" in label, label
    at.selectbox(key="eval_run").select(run.id).run()
    assert "saved no model (cancelled)" in texts(at.caption), "a run without a model offers no activation"
