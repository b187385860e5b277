"""Dataset: what data is here, images per class, example images per class, and downloads."""
import numpy as np
import pandas as pd
import streamlit as st

import app
from kmnist import datasets, drawings, figures, settings
from kmnist.classes import HENTAIGANA_NOTE
from pages import cached, common

app.enter()  # inside app.py's frame, even on a first deep link

SAMPLES = 8  # example images per class

st.title("Datasets")
public = settings.public_mode()
root = datasets.data_dir()
st.caption(f"Data dir: `{root}` (set `KMNIST_DATA_DIR` to use another). K49 has 49 hiragana classes, "
           "Kuzushiji-MNIST 10 of them; dataset folders in the official layout (such as kmnist6k) count too.")

summaries = datasets.summarise_all()


def shown(value) -> str:
    """A table cell: counts with thousands separators, a dash where the file that tells is absent."""
    return "—" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


st.dataframe(pd.DataFrame([{k: shown(v) for k, v in row.items()} for row in datasets.table(summaries)]),
             hide_index=True)
labelled = [s for s in summaries if s.has_labels]
if not labelled:
    st.info(f"No dataset is in `{root}` yet. " + ("" if public else "Download an official one below (needs "
            "internet), or ") + "set `KMNIST_DATA_DIR` to a folder holding dataset folders (k49/, kmnist/, "
            "kmnist6k/, mnist/) before starting the app.")
    if not public:
        st.caption("From a terminal: `python -m kmnist download k49`.")
else:
    names = [s.name for s in labelled]
    with_images = [s.name for s in labelled if s.train_images or s.test_images]
    pick = st.selectbox("Dataset", names, index=names.index(with_images[0]) if with_images else 0,
                        key="dataset_name", help="Opens on the first dataset whose images are here")
    chosen = next(s for s in labelled if s.name == pick)
    splits = [sp for sp, n in (("train", chosen.train_size), ("test", chosen.test_size)) if n is not None]
    has_images = {"train": chosen.train_images, "test": chosen.test_images}
    split = st.radio("Split", splits, horizontal=True, key="dataset_split",
                     index=next((i for i, sp in enumerate(splits) if has_images[sp]), 0))
    classes = datasets.load_classes(pick)
    counts = datasets.class_counts(pick, split)
    st.plotly_chart(figures.class_counts(counts, classes, f"{chosen.title}: {split} images per class"),
                    key="counts")
    hi, lo = int(np.argmax(counts)), int(np.argmin(counts))
    ratio = counts[hi] / max(counts[lo], 1)
    spread = (f"every class has {counts[hi]:,}. " if counts[hi] == counts[lo] else
              f"most: {classes[hi].char} ({counts[hi]:,}); fewest: {classes[lo].char} ({counts[lo]:,}); "
              + (f"{ratio:.0f}× imbalance. " if ratio >= 1.5 else "nearly balanced. "))
    st.caption(f"{counts.sum():,} {split} labels; {spread}Counted from the labels"
               + ("." if has_images[split] else f": the {split} images themselves are not here."))

    st.subheader("Example images per class")
    images = cached.array(pick, split, "imgs")
    if images is None:
        st.info(common.missing_note(pick, split))
    else:
        st.caption(f"{SAMPLES} random {split} images of each class, as stored: light ink on black, 28×28 pixels. "
                   "Each class is named with its character, romaji and source kanji. " + HENTAIGANA_NOTE)
        common.class_grid(images, cached.samples(pick, split, len(classes), SAMPLES), classes)

st.subheader("Your drawings")
mine = drawings.drawings()
if not mine:
    st.caption(f"None yet. Under every prediction on the Draw page, \"Right?\" saves the drawing with the character "
               f"you confirm or choose, into the {drawings.NAME} dataset in the data dir.")
else:
    st.caption(f"{len(mine)} drawing{'s' if len(mine) != 1 else ''} saved from the Draw page in "
               f"`{drawings.folder()}`, in the official layout (every fifth held out as test). Per character: "
               + ", ".join(f"{char} {n}" for char, n in drawings.counts(mine).items()))
    common.show_strip(np.stack([drawings.image(d) for d in mine[-48:]]),
                      "Latest drawings, oldest first: " + " ".join(d.char for d in mine[-48:]), cols=12)
    doomed = st.selectbox("Drawing", [d.id for d in reversed(mine)], key="drawing_pick",
                          format_func=lambda i: next(f"{d.char} · {d.saved} · {d.split}" for d in mine if d.id == i))
    if st.button("Delete this drawing", key="drawing_delete", disabled=public,
                 help="Read-only here: this public site deletes nothing" if public else None):
        try:
            drawings.delete(doomed)
        except (LookupError, OSError) as e:
            st.error(f"Could not delete it: {e}")
        else:
            st.rerun()

st.subheader("Download the official datasets")
if public:
    common.stop("Downloads are turned off on this public site: it only shows the data already here.")
st.caption("Files come from their publishers (CODH for Kuzushiji, Google's MNIST mirror), are checked "
           "against the published MD5 and only then stored in the data dir.")
for name, source in datasets.OFFICIAL.items():
    status = datasets.status(name)
    if status.complete:
        st.success(f"{source.title} ({name}): all {len(source.files)} files present.")
        continue
    if st.button(f"Download {source.title} ({name})", key=f"download_{name}",
                 help="Fetches only the missing files: " + ", ".join(status.missing)):
        slot = st.empty()  # the progress bar, replaced by the outcome so no stale bar stays above an error
        bar = slot.progress(0.0, text=f"Starting {name}…")

        def progress(file: str, done: int, total: int | None, bar=bar) -> None:
            share = done / total if total else 0.0
            size = f" of {total / 1e6:.1f} MB" if total else ""
            bar.progress(min(share, 1.0), text=f"{file}: {done / 1e6:.1f}{size}")

        try:
            with st.spinner(f"Downloading {name}…"):
                fetched = datasets.download(name, progress=progress)
        except datasets.DataMissingError as e:
            slot.error(str(e))
        else:
            slot.success(f"{source.title} is ready in {status.folder}: {len(fetched)} file(s) downloaded and "
                         "verified.")
    else:
        st.caption(f"{name}: missing " + ", ".join(status.missing))
