"""The runs registry and the active-model pointer."""
from __future__ import annotations

import shutil

import pytest

from kmnist import runs


def test_shipped_default_is_active_until_another_is_chosen():
    shipped = runs.active_run()
    assert shipped is not None and shipped.shipped, "a fresh clone has a working default model"
    assert shipped.has_model
    shutil.copytree(runs.get_run("kmnist6k-seed").path, runs.runs_dir() / "mine")  # a run of one's own
    mine = runs.get_run("mine")
    assert runs.active_run_id() == shipped.id, "a new run does not change the active model by itself"
    runs.set_active("mine")
    assert runs.active_run_id() == "mine"
    ids = [r.id for r in runs.list_runs()]
    assert ids[0] == "mine" and shipped.id in ids
    assert not mine.shipped and mine.label().startswith("mine (seed on kmnist6k")


def test_unknown_runs_are_reported(runs_dir):
    with pytest.raises(runs.RunNotFoundError):
        runs.get_run("no-such-run")
    with pytest.raises(ValueError):
        runs.set_active("../../etc")


def test_a_dangling_pointer_falls_back_to_the_default(runs_dir):
    runs_dir.mkdir(parents=True, exist_ok=True)
    (runs_dir / "ACTIVE").write_text("deleted-run\n")
    assert runs.active_run_id() == (runs.DEFAULT_POINTER.read_text().strip())
