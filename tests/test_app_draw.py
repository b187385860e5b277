"""The Draw page's tutor controls under AppTest, with injected drawings (AppTest's canvas returns none)."""
from __future__ import annotations


import numpy as np
import pytest

from kmnist import classes as cls, datasets, drawings, runs
from tests.apptest import captions, metric, open_page, texts
from tests.conftest import SEED_RUN, png


@pytest.fixture
def data(no_data):
    """The test's own empty data dir: saved drawings land here."""
    return no_data


@pytest.fixture
def seed(seed_run) -> runs.Run:
    return seed_run


def cross() -> np.ndarray:
    drawing = np.full((200, 200, 4), 255, np.uint8)  # white, opaque, like the canvas
    drawing[40:160, 95:110, :3] = 0
    drawing[60:75, 50:150, :3] = 0
    return drawing


def test_prediction_shows_source_kanji_where_it_looked_and_nearest_forms(seed, data):
    at = open_page(draw_injected_image=cross())
    best = next(c for c in seed.classes if c.char == metric(at, "Prediction").value)
    assert f"from the kanji **{best.kanji}**" in texts(at.caption), "the 字母 of the prediction is shown"
    assert "hentaigana" in texts(at.caption), "the page says several shapes map to one class"
    caps = captions(at)
    assert "Where the model looked" in caps and "Nearest training images" in caps, caps
    assert any(e.label.startswith("How each character is written") for e in at.expander), "forms show without data"


def test_right_confirms_and_saves_the_drawing(seed, data):
    at = open_page(draw_injected_image=cross())
    char = metric(at, "Prediction").value
    next(b for b in at.button if b.label == f"Yes, save as {char}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Saved to your drawings" in texts(at.success)
    found = drawings.drawings(root=data)
    assert [(d.char, d.predicted, d.run) for d in found] == [(char, char, SEED_RUN)]
    assert drawings.raw_png(found[0], root=data).startswith(b"\x89PNG"), "the raw canvas picture is kept"
    assert np.array_equal(drawings.image(found[0], root=data), at.session_state["last_drawing"])


def test_right_corrects_the_label(seed, data):
    at = open_page(draw_injected_image=cross())
    predicted = metric(at, "Prediction").value
    other = next(c for c in seed.classes if c.char != predicted)
    next(s for s in at.selectbox if s.label == "Right? This drawing shows").set_value(other.index).run()
    button = next(b for b in at.button if b.label.startswith("Correct it"))
    assert button.label == f"Correct it: save as {other.char}"
    button.click().run()
    assert [d.char for d in drawings.drawings(root=data)] == [other.char]
    assert datasets.load_labels(drawings.NAME, "train", data).tolist() == [other.index]


def test_trace_mode_shows_forms_of_the_chosen_character(seed, data):
    at = open_page(draw_injected_image=cross())
    at.segmented_control(key="tutor_mode").set_value("Trace").run()
    at.selectbox(key="trace_class").set_value(3).run()
    at.slider(key="trace_form").set_value(2).run()
    assert not at.exception, [e.value for e in at.exception]
    assert f"Forms of {seed.classes[3].label()}, most typical first; form 2" in captions(at)


def test_practice_scores_an_attempt_and_keeps_a_tally(seed, data):
    at = open_page(draw_injected_image=cross(), practice_target=0)
    at.segmented_control(key="tutor_mode").set_value("Practice").run()
    want = seed.classes[0]
    assert f"Draw {want.char}" in texts(at.markdown)
    assert metric(at, "This session").value == "0 of 0 right"
    right = metric(at, "Prediction").value == want.char
    assert (at.success if right else at.warning), "the attempt is scored"
    next(b for b in at.button if b.label == "Score this attempt and go on").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert metric(at, "This session").value == ("1 of 1 right (100%)" if right else "0 of 1 right (0%)")
    assert at.session_state["practice_target"] != 0, "the next character is another one"


def test_practice_starts_on_an_empty_canvas(seed, data):
    at = open_page(draw_strokes={"objects": [{"type": "path"}]})  # strokes kept on the server canvas
    at.segmented_control(key="tutor_mode").set_value("Trace").run()
    assert "draw_strokes" in at.session_state, "tracing keeps the drawing"
    at.segmented_control(key="tutor_mode").set_value("Practice").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "draw_strokes" not in at.session_state, "a drawing made for another mode is no attempt: cleared"
    assert not at.warning and not at.success, "nothing is scored before the first attempt"


def test_blank_upload_says_there_is_no_character(seed, data):
    at = open_page()
    at.file_uploader(key="upload").upload("blank.png", png(np.full((80, 80), 255, np.uint8)), "image/png")
    at.run()
    assert "has no character in it" in texts(at.info)
    assert "Reading" not in texts(at.caption), "no drawing is read, so no caption says one is"
    assert at.button(key="remove_upload"), "the upload can still be removed"


def test_drawing_after_an_upload_is_read_and_the_upload_can_be_removed(seed, data):
    picture = np.full((120, 90), 250, np.uint8)
    picture[20:100, 40:52] = 10
    at = open_page()
    at.file_uploader(key="upload").upload("char.png", png(picture), "image/png")
    at.run()
    assert "Reading the uploaded file char.png" in texts(at.caption)
    from_upload = at.session_state["last_drawing"].copy()
    at.session_state["draw_injected_image"] = cross()
    at.session_state["draw_source"] = "canvas"  # what the canvas's change callback sets after a stroke
    at.run()
    assert "Reading your drawing" in texts(at.caption)
    assert not np.array_equal(at.session_state["last_drawing"], from_upload), "the latest input wins"
    next(b for b in at.button if b.label == "Remove upload").click().run()
    assert "char.png" not in texts(at.caption)


def test_the_drawing_is_kept_when_leaving_and_coming_back(seed, data):
    at = open_page(draw_injected_image=cross())
    at.radio(key="draw_mode").set_value("Server").run()  # the server canvas redraws a kept drawing
    char = metric(at, "Prediction").value
    del at.session_state["draw_injected_image"]  # the canvas sends nothing until the next stroke
    at.switch_page("pages/dataset.py").run()
    at.switch_page("pages/draw.py").run()
    assert at.radio(key="draw_mode").value == "Server", "the chosen canvas is kept too"
    assert metric(at, "Prediction").value == char, "the kept drawing is read again on return"


def test_dataset_page_lists_counts_and_deletes_drawings(seed, data):
    table = seed.classes
    kept = [drawings.save(np.eye(28, dtype=np.uint8) * 255, None, table[i % 2].char, "お", SEED_RUN, table,
                          root=data) for i in range(3)]
    at = open_page("dataset")
    assert not at.exception, [e.value for e in at.exception]
    assert f"{table[0].char} 2" in texts(at.caption) and f"{table[1].char} 1" in texts(at.caption)
    at.selectbox(key="drawing_pick").set_value(kept[1].id).run()
    next(b for b in at.button if b.label == "Delete this drawing").click().run()
    assert [d.id for d in drawings.drawings(root=data)] == [kept[0].id, kept[2].id]


def test_training_page_offers_a_finetune_with_the_drawings(seed, data, monkeypatch):
    from kmnist import jobs
    drawings.save(np.eye(28, dtype=np.uint8) * 255, None, seed.classes[0].char, "お", SEED_RUN, seed.classes,
                  root=data)
    started = {}
    monkeypatch.setattr(jobs, "start_finetune", lambda base, name, epochs, data_root=None: started.update(
        base=base, name=name, epochs=epochs) or "ft-run")
    at = open_page("training")
    assert "1 drawing" in texts(at.caption)
    next(b for b in at.button if b.label == "Fine-tune the active model").click().run()
    assert started == {"base": SEED_RUN, "name": drawings.NAME, "epochs": 3}


def test_right_offers_all_49_and_saves_a_character_the_model_does_not_know(seed, data):
    at = open_page(draw_injected_image=cross())
    box = next(s for s in at.selectbox if s.label == "Right? This drawing shows")
    assert len(box.options) == 49 and box.options[-1].endswith("· new"), box.options[-3:]
    wi = next(i for i, label in enumerate(box.options) if label.startswith("ゐ "))
    box.set_value(wi).run()
    next(b for b in at.button if b.label == "Correct it: save as ゐ").click().run()
    assert [d.char for d in drawings.drawings(root=data)] == ["ゐ"]
    assert datasets.load_classes(drawings.NAME, data)[-1].char == "ゐ", "the drawings' class map grows"


def test_trace_offers_hentaigana_for_a_character_without_training_images(seed, data):
    from kmnist import glyphs
    what, forms = glyphs.trace_forms("ゐ")
    at = open_page(draw_injected_image=cross())
    at.segmented_control(key="tutor_mode").set_value("Trace").run()
    box = at.selectbox(key="trace_class")
    assert len(box.options) == 49
    at.selectbox(key="trace_class").set_value(10 + [c.char for c in cls.k49_classes() if c.char not in
                                                    {x.char for x in seed.classes}].index("ゐ")).run()
    assert not at.exception, [e.value for e in at.exception]
    if not len(forms):
        assert "No forms of ゐ to trace here" in texts(at.info)
        pytest.skip("no installed font carries ゐ (Debian: fonts-hanazono)")
    at.slider(key="trace_form").set_value(len(forms)).run()
    assert f"Forms of ゐ wi · 為, {what}; form {len(forms)}" in captions(at)


def test_training_page_names_the_new_characters_a_finetune_will_teach(seed, data):
    for i in range(6):  # 5 to learn from (the fifth is held out) and one more
        drawings.save(np.eye(28, dtype=np.uint8) * 255, None, "ゐ", "お", SEED_RUN, seed.classes, root=data)
    for i in range(2):
        drawings.save(np.eye(28, dtype=np.uint8) * 255, None, "ゑ", "お", SEED_RUN, seed.classes, root=data)
    at = open_page("training")
    assert "**New characters it will learn:** ゐ — " in texts(at.markdown)
    assert "Too few drawings to learn from yet (a new character needs 5): ゑ 2." in texts(at.caption)


@pytest.mark.parametrize("page", ["evaluation", "weak_classes"])
def test_new_characters_are_scored_on_held_out_drawings(page, runs_dir, data):
    import shutil
    from kmnist import files
    from kmnist.finetune import FINETUNE_FILE
    shutil.copytree(runs.SHIPPED / SEED_RUN, runs_dir / "grown")  # stands in for a grown run: only its report counts
    files.write_json(runs_dir / "grown" / FINETUNE_FILE, {
        "run": "grown", "base_run": SEED_RUN, "drawings": drawings.NAME, "train_drawings": 8, "held_out": 2,
        "skipped": 0, "repeat": 50, "epochs": 3, "state": "completed",
        "before": {"test_accuracy": 0.86, "drawings_accuracy": 0.0},
        "after": {"test_accuracy": 0.86, "drawings_accuracy": 0.5},
        "new": [{"char": "ゐ", "index": 10, "train_drawings": 8, "held_out": 2, "read_right": 1}]})
    runs.set_active("grown")
    at = open_page(page)
    assert "Characters grown learned from your drawings" in texts(at.markdown)
    table = next(d.value for d in at.dataframe if "read right" in d.value.columns)
    assert table["char"].tolist() == ["ゐ"] and table["read right"].tolist() == [1]
    assert table["recall"].tolist() == [0.5]
