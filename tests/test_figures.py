"""What the pages show: Plotly figures, image grids and UMAP maps."""
import numpy as np
import pandas as pd
import pytest

from kmnist import embed, figures
from kmnist.jobs import Job
from kmnist.classes import k49_classes
from kmnist.predict import Guess

CLASSES = k49_classes()[:3]


def test_class_counts_puts_characters_on_the_axis():
    fig = figures.class_counts(np.array([5, 0, 7]), CLASSES, "t")
    bar = fig.data[0]
    assert list(bar.x) == ["あ", "い", "う"] and list(bar.y) == [5, 0, 7]
    assert fig.layout.xaxis.type == "category"


def test_top_guesses_lists_best_first_with_romaji():
    guesses = [Guess(2, "う", "u", 0.7), Guess(0, "あ", "a", 0.2)]
    bar = figures.top_guesses(guesses).data[0]
    assert list(bar.y) == ["う  u", "あ  a"] and list(bar.x) == [0.7, 0.2]
    assert list(bar.text) == ["70.0%", "20.0%"]


def test_the_drawing_star_is_drawn_above_the_map_points_large_and_outlined():
    config = embed.EmbedConfig(dataset="tiny10", sample=6)
    emb = embed.Embedding(config, np.arange(12, dtype=np.float32).reshape(6, 2), np.arange(6), (6,), ("train",), 1.0)
    fig = figures.map_figure(emb, np.array([0, 1, 2, 0, 1, 2]), CLASSES, {"your last drawing": np.array([1.0, 2.0])})
    star = fig.data[-1]
    assert star.name == "your last drawing" and (star.x, star.y) == ((1.0,), (2.0,)), "the mark comes last"
    # Plotly draws WebGL traces above SVG ones whatever their order: an SVG star would hide under the points.
    assert {t.type for t in fig.data} == {"scattergl"}, "the star is WebGL like the points, so it is drawn on top"
    points = fig.data[0].marker.size
    assert star.marker.symbol == "star" and star.marker.size >= 8 * points, "many times a map point"
    assert star.marker.line.width >= 2 and star.marker.line.color != star.marker.color, "outlined in a contrast colour"


def test_durations_and_progress_read_as_people_say_them():
    assert [figures.format_seconds(s) for s in (4.4, 65, 7380)] == ["4 s", "1 min 05 s", "2 h 03 min"]
    assert figures.progress_text("UMAP: neighbour graph", 20, 62) == \
        "UMAP: neighbour graph · 20 s elapsed · about 42 s left"
    assert figures.progress_text("UMAP: layout epoch 3/200", 70, 62) == \
        "UMAP: layout epoch 3/200 · 1 min 10 s elapsed · longer than the estimated 1 min 02 s"


def test_confusion_is_a_clickable_scatter_with_one_square_per_cell():
    cm = np.array([[8, 2, 0], [1, 9, 0], [0, 3, 7]])
    fig = figures.confusion(cm, CLASSES)
    assert all(t.type == "scatter" and t.marker.symbol == "square" for t in fig.data)
    cells = {(c[0], c[1]): c for t in fig.data for c in t.customdata}
    assert len(cells) == 9, "every cell is a point, so any cell can be clicked"
    true, pred, count, share, t_char, p_char = cells[(2, 1)]
    assert (count, t_char, p_char) == (3, "う", "い") and abs(share - 0.3) < 1e-9
    assert list(fig.layout.yaxis.range) == [2.5, -0.5], "the first class sits at the top"
    normalised = figures.confusion(cm, CLASSES, normalise=True)
    shown = {(c[0], c[1]): v for t in normalised.data for c, v in zip(t.customdata, t.marker.color)}
    assert abs(shown[(2, 1)] - 0.3) < 1e-9 and abs(shown[(0, 0)] - 0.8) < 1e-9


def test_cell_from_selection_reads_customdata_or_coordinates():
    assert figures.cell_from_selection(None) is None
    assert figures.cell_from_selection({"points": []}) is None
    assert figures.cell_from_selection({"points": [{"customdata": [2, 1, 3, 0.3, "う", "い"], "x": 1, "y": 2}]}) == (2, 1)
    assert figures.cell_from_selection({"points": [{"x": 0.0, "y": 2.0}]}) == (2, 0)


def test_history_has_training_and_validation_curves():
    fig = figures.history({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.8]})
    names = [(t.name, t.xaxis) for t in fig.data]
    assert names == [("training", "x"), ("validation", "x"), ("training", "x2")]
    assert list(fig.data[0].x) == [1, 2]


def test_f1_across_runs_has_a_bar_group_per_run_and_the_threshold():
    table = pd.DataFrame({"な": [0.7, 0.9], "ま": [np.nan, 0.85]}, index=["a", "b"])
    fig = figures.f1_across_runs(table, threshold=0.8)
    assert [t.name for t in fig.data] == ["a", "b"] and list(fig.data[1].y) == [0.9, 0.85]
    assert fig.layout.shapes[0].y0 == 0.8


def test_runs_in_one_chart_get_colours_of_their_own():
    shipped = ["kmnist6k-resnet-bn-e100", "kmnist6k-resnet-bn-w48", "kmnist6k-resnet-bn-wide-e90", "kmnist6k-seed"]
    ids = shipped + [f"kmnist6k-seed-2026120{i}" for i in range(5)]
    colours = figures.run_colours(ids)
    assert len(set(colours.values())) == len(ids) == len(figures.RUN_PALETTE), "no two runs share a colour"
    assert figures.THRESHOLD_RED not in {c.lower() for c in colours.values()}, "no bar looks like the threshold"
    assert figures.run_colours(list(reversed(ids))) == colours, "the order runs come in does not matter"


def test_samples_are_of_the_class_seeded_and_capped():
    labels = np.array([0, 1, 1, 2, 1, 1, 0, 1])
    picked = figures.samples(labels, 1, 3, seed=5)
    assert len(picked) == 3 and set(labels[picked]) == {1}
    assert list(picked) == sorted(picked), "examples come in dataset order"
    np.testing.assert_array_equal(picked, figures.samples(labels, 1, 3, seed=5))
    np.testing.assert_array_equal(figures.samples(labels, 0, 10), [0, 6])


def test_samples_per_class_covers_empty_classes():
    picks = figures.samples_per_class(np.array([0, 0, 2]), 4, 5)
    assert [len(p) for p in picks] == [2, 0, 1, 0]


def test_enlarge_repeats_pixels():
    big = figures.enlarge(np.array([[0, 255]], np.uint8), 3)
    assert big.shape == (3, 6) and big.dtype == np.uint8
    assert (big[:, :3] == 0).all() and (big[:, 3:] == 255).all()


def test_tile_places_images_in_a_grid_with_gaps():
    images = np.stack([np.full((2, 2), v, np.uint8) for v in (10, 20, 30)])
    out = figures.tile(images, cols=2, factor=1, gap=1, fill=0)
    assert out.shape == (5, 5), "2 rows and 2 columns of 2x2 cells with 1-pixel gaps"
    assert out[0, 0] == 10 and out[0, 3] == 20 and out[3, 0] == 30
    assert out[3, 3] == 0, "the unused cell stays background"
    assert figures.tile(images, cols=10, factor=2, gap=0).shape == (4, 12), "never more columns than images"
    with pytest.raises(ValueError):
        figures.tile(np.zeros((0, 2, 2), np.uint8), cols=2)


def job(state: str, **status) -> Job:
    return Job("r", None, 0.0, state, status)


def test_a_running_job_reads_as_epoch_batch_and_time_left():
    running = job("running", epoch=2, epochs=3, batch=10, batches=40, eta_s=65, metrics={"loss": 0.5, "accuracy": 0.8})
    assert figures.job_line(running) == "epoch 2/3 · batch 10/40 · about 1 min 05 s left"
    assert figures.job_fraction(running) == pytest.approx((40 + 10) / 120)
    assert figures.live_point(running) == (1.25, {"loss": 0.5, "accuracy": 0.8}), "epoch 2 is a quarter done"
    assert figures.job_line(job("running", epoch=1, epochs=3)) == "epoch 1/3 · batch 0/?", "no estimate yet"


def test_a_job_that_is_not_running_has_no_live_point_and_says_its_state():
    assert figures.job_line(job("starting")) == "starting: loading TensorFlow and the data"
    assert figures.job_line(job("cancelled", epoch=1, epochs=3, batch=5, batches=40)) == "cancelled"
    assert figures.job_fraction(job("completed")) == 1.0, "done even when the status lost its counters"
    assert figures.job_fraction(job("starting")) == 0.0
    assert figures.live_point(job("cancelled", epoch=1, batches=40, batch=5, metrics={"loss": 1.0})) is None
    assert figures.live_point(job("running", epoch=1, batches=40, batch=5, metrics={})) is None, "no metrics yet"
