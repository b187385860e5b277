"""Public mode (KMNIST_PUBLIC=1): on every page, every control that writes on the server is hidden or disabled,
and exception details stay out of the browser. Each test checks the control is there without the switch,
so it cannot pass by the page simply failing to draw."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from kmnist import runs
from tests.apptest import open_page, texts


@pytest.fixture(autouse=True)
def error_details():
    """Public mode sets a process-wide Streamlit option; give the next test the value it found."""
    before = st.get_option("client.showErrorDetails")
    yield
    st.set_option("client.showErrorDetails", before)


@pytest.fixture
def data(tmp_path, monkeypatch, shared_data) -> Path:
    """The real data (K49 has no images here, so a download is offered) and a private map cache."""
    monkeypatch.setenv("KMNIST_DATA_DIR", str(shared_data))
    monkeypatch.setenv("KMNIST_CACHE_DIR", str(tmp_path / "cache"))
    return shared_data


def visit(page: str, public: bool, monkeypatch) -> AppTest:
    """The page as served with public mode on or off."""
    monkeypatch.setenv("KMNIST_PUBLIC", "1" if public else "0")
    return open_page(page)


def enabled(at: AppTest) -> set[str]:
    """Labels of the buttons a visitor can press (form submit buttons included)."""
    return {b.label for b in at.button if not b.disabled}


def test_dataset_offers_no_downloads(data, monkeypatch):
    assert any(label.startswith("Download") for label in enabled(visit("dataset", False, monkeypatch)))
    at = visit("dataset", True, monkeypatch)
    assert not any(label.startswith("Download") for label in {b.label for b in at.button}), "download buttons"
    assert "Downloads are turned off on this public site" in texts(at.info)


def test_embedding_computes_no_maps(data, monkeypatch, runs_dir):
    # A copy of a shipped run under a new id: a model whose features map is not stored anywhere.
    shutil.copytree(runs.get_run("kmnist6k-seed").path, runs_dir / "unmapped")
    runs.set_active("unmapped")
    at = visit("embedding", False, monkeypatch)
    at.radio(key="embed-space").set_value("features").run()
    assert "Compute this map" in enabled(at)
    at = visit("embedding", True, monkeypatch)
    at.radio(key="embed-space").set_value("features").run()
    assert not at.exception and "Compute this map" not in {b.label for b in at.button}
    assert "computing maps is turned off here" in texts(at.info)


def test_evaluation_activates_nothing(data, monkeypatch):
    at = visit("evaluation", False, monkeypatch)
    at.selectbox(key="eval_run").select("kmnist6k-seed").run()
    assert "Make this the active model" in enabled(at)
    at = visit("evaluation", True, monkeypatch)
    at.selectbox(key="eval_run").select("kmnist6k-seed").run()
    assert "Make this the active model" not in enabled(at)


def test_training_starts_cancels_and_activates_nothing(data, monkeypatch):
    writes = {"Start training", "Make this the active model"}
    at = visit("training", False, monkeypatch)
    at.selectbox(key="runs_pick").select("kmnist6k-seed").run()
    assert writes <= enabled(at)
    at = visit("training", True, monkeypatch)
    at.selectbox(key="runs_pick").select("kmnist6k-seed").run()
    assert not enabled(at) & writes, enabled(at)
    assert not any(b.label.startswith("Back to the shipped default") and not b.disabled for b in at.button)
    assert "public site" in texts(at.info)


@pytest.mark.parametrize("page", ["draw", "weak_classes"])
def test_read_only_pages_have_no_write_controls(page, data, monkeypatch):
    at = visit(page, True, monkeypatch)
    assert enabled(at) <= {"Clear"}, f"only the canvas' Clear may be pressed: {enabled(at)}"


def test_public_mode_hides_exception_details(data, monkeypatch):
    visit("draw", False, monkeypatch)
    assert st.get_option("client.showErrorDetails") != "none"
    visit("draw", True, monkeypatch)
    assert st.get_option("client.showErrorDetails") == "none"
