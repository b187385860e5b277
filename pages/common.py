"""What the pages show the same way: a missing precondition and how to get it, a run's test split, image grids."""
from __future__ import annotations

import numpy as np
import streamlit as st

from kmnist import datasets, figures, runs, settings
from kmnist.classes import ClassInfo
from pages import cached


def stop(message: str) -> None:
    """Say what is missing and how to get it, then end the page here."""
    st.info(message)
    st.stop()


def missing_note(name: str, split: str, kind: str = "imgs") -> str:
    """Why an array is unavailable and what to do about it in the app."""
    status = datasets.status(name)
    f = datasets.spec(name).file(f"{split}-{kind}")
    what = f.name if f else f"the {split} {kind}"
    if settings.public_mode():
        return f"{name} has no {what} on this server."
    how = ("download it on the **Dataset** page" if status.official
           else f"copy the {name}/ dataset folder into the data dir")
    return (f"{name} is missing {what} in `{status.folder}`: {how}, or start the app with `KMNIST_DATA_DIR` "
            f"pointing at a folder that holds {name}/.")


def test_split(run: runs.Run) -> tuple[np.ndarray, np.ndarray, np.ndarray] | str:
    """(test images, true labels, predicted labels) of a run's test set, or why they are unavailable."""
    name = run.config.dataset
    y_pred = run.test_predictions()
    if y_pred is None:
        return f"Run {run.id} saved no test predictions ({run.state})."
    y_true = cached.array(name, "test", "labels")
    if y_true is None:
        return missing_note(name, "test", "labels")
    if len(y_true) != len(y_pred):
        return (f"The {name} test set here has {len(y_true)} images, but run {run.id} predicted "
                f"{len(y_pred)}: it was evaluated on a different copy of {name}.")
    images = cached.array(name, "test", "imgs")
    if images is None:
        return missing_note(name, "test")
    return images, y_true, y_pred


def show_strip(images: np.ndarray, caption: str, cols: int | None = None, factor: int = 2,
               slots: int | None = None) -> None:
    """A row (or grid) of small images as one sharp picture; `slots` pads it with blank (black) cells so
    strips with fewer images come out at the same scale as full ones."""
    if len(images) == 0:
        st.caption(f"{caption}: no images")
        return
    if slots and len(images) < slots:
        images = np.concatenate([images, np.zeros((slots - len(images), *images.shape[1:]), images.dtype)])
    st.image(figures.tile(images, cols or len(images), factor=factor), caption=caption)


def class_grid(images: np.ndarray, picks: list[np.ndarray], classes: list[ClassInfo], cols: int = 4,
               factor: int = 2) -> None:
    """Example images of each class, one captioned strip per class, `cols` classes a row."""
    for start in range(0, len(classes), cols):
        for column, c in zip(st.columns(cols), classes[start: start + cols]):
            with column:
                show_strip(images[picks[c.index]], f"{c.label()} · class {c.index}", cols=4, factor=factor)


# Session key under which the Draw page keeps its last prepared drawing (uint8 28x28, dataset style);
# the Embedding page places it on the maps.
LAST_DRAWING = "last_drawing"


def new_character_scores(run: runs.Run) -> None:
    """A grown run's new characters, scored on the held-out drawings (no test images exist of them)."""
    from kmnist.finetune import new_character_scores as scores
    rows = scores(run)
    if rows:
        st.markdown(f"**Characters {run.id} learned from your drawings** have no {run.config.dataset} test images: "
                    "they are scored on the drawings held out of the fine-tune (every fifth one saved).")
        st.dataframe(rows, hide_index=True,
                     column_config={"recall": st.column_config.NumberColumn(format="%.3f")})
