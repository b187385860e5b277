"""The "none of these" rule: its threshold on validation, its score in model.onnx, and the same decision in
Python (predict, the Draw page) and in the browser (the live canvas)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from kmnist import cli, export, glyphs, runs, unknown
from kmnist.config import TrainConfig
from kmnist.predict import OnnxPredictor
from kmnist.preprocess import prepare, to_input
from kmnist.train import train
from tests import sketch
from tests.test_browser import ARTIFACTS, app_url, browser, draw, page  # noqa: F401 - fixtures
from tests.test_live import open_live

DEFAULT = "kmnist6k-resnet-bn-wide-e90"
UNKNOWN_CHARS = "ゐゝあ"  # K49 characters no shipped run knows: ゐ and ゝ are among the study's weak classes


def ipa_fonts() -> list:
    """The IPA fonts CI installs (fonts-ipafont-*), else skip."""
    fonts = [f for f in glyphs.fonts_with(UNKNOWN_CHARS) if f.name.lower().startswith("ipa")]
    if not fonts:
        pytest.skip("no IPA font installed (apt install fonts-ipafont-gothic fonts-ipafont-mincho)")
    return fonts


def test_threshold_keeps_the_stated_share_and_no_more_than_it_must():
    scores = np.random.default_rng(0).normal(size=203)
    for keep in (0.5, 0.9, 0.95, 1.0):
        kept = (scores <= unknown.threshold_keeping(scores, keep)).mean()
        assert keep <= kept < keep + 1 / len(scores), f"keep {keep}: the threshold keeps {kept:.4f}"


def test_fit_flags_what_lies_away_from_every_class_and_like_the_outliers():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 4, (3, 16))
    labels = np.repeat(np.arange(3), 100)
    features = np.maximum(centres[labels] + rng.normal(size=(300, 16)), 0)
    outliers = np.maximum(rng.normal(6, 1, (100, 16)), 0)
    rule = unknown.fit(features, labels, np.zeros((0, 16)), outliers)
    val = np.maximum(centres[np.repeat(np.arange(3), 20)] + rng.normal(size=(60, 16)), 0)
    rule.threshold = unknown.threshold_keeping(rule.scores(val), 0.95)
    fresh = np.maximum(rng.normal(6, 1, (20, 16)), 0)  # drawn like the outliers, never fitted
    assert rule.flags(rule.scores(fresh)).mean() >= 0.9, "outlier-like features must read none of these"


@pytest.mark.slow  # trains, then renders fonts and fits the head
def test_a_trained_run_has_a_rule_that_keeps_the_share_and_rides_in_model_onnx(data_dir):
    run = train(TrainConfig(dataset="tiny10", epochs=1, batch_size=32), data_root=data_dir)
    rule = unknown.load(run)
    assert rule is not None, f"training made no rule: {(run.path / unknown.RULE_FILE).read_text()[:500]}"
    _, val = unknown.run_splits(run, data_dir)  # the run's own validation split, carved as training carved it
    _, features = unknown.read(run.load_model(), val.images)
    scores = rule.scores(features)
    kept = float((~rule.flags(scores)).mean())
    assert kept >= unknown.KEEP, f"the threshold keeps {kept:.1%} of validation, under {unknown.KEEP:.0%}"
    assert kept == pytest.approx(rule.info["validation_kept"]), "unknown.json misstates the share kept"
    outputs = export.session(run.path / export.ONNX_FILE).run(None, {export.INPUT_NAME: to_input(val.images)})
    assert len(outputs) == 2, "model.onnx lacks the score output the browser reads"
    np.testing.assert_allclose(outputs[1], scores, rtol=1e-3, atol=1e-3, err_msg="ONNX and Python scores differ")


@pytest.fixture
def unknown_pngs(tmp_path):
    """Print renders of characters no shipped run knows, as PNG files (dark ink on white, like drawings)."""
    from PIL import Image
    paths = []
    for font in ipa_fonts()[:2]:
        for char in UNKNOWN_CHARS:
            path = tmp_path / f"{ord(char):x}-{font.stem}.png"
            Image.fromarray(glyphs.render(char, font)).save(path)
            paths.append(path)
    return paths


def test_predict_json_says_unknown_for_characters_the_run_does_not_know(unknown_pngs, capsys):
    assert cli.main(["predict", "--run", DEFAULT, "--json", *map(str, unknown_pngs)]) == 0
    results = json.loads(capsys.readouterr().out)
    assert all(isinstance(r["unknown"], bool) for r in results), results
    flagged = [r["file"] for r in results if r["unknown"]]
    assert len(flagged) == len(results), f"not flagged: {sorted(set(map(str, unknown_pngs)) - set(flagged))}"


def test_known_handwriting_mostly_reads_known(shared_data, tmp_path, capsys):
    from PIL import Image

    from kmnist import datasets
    images = datasets.load_images("kmnist6k", "test", shared_data)[:40]
    paths = []
    for i, image in enumerate(images):
        paths.append(tmp_path / f"test-{i}.png")
        Image.fromarray(image).save(paths[-1])
    assert cli.main(["predict", "--run", DEFAULT, "--json", *map(str, paths)]) == 0
    flagged = sum(r["unknown"] for r in json.loads(capsys.readouterr().out))
    assert flagged <= 6, f"{flagged} of 40 real test images of known characters read 'none of these'"


def test_python_predictors_give_the_same_score_as_the_exported_model(unknown_pngs):
    run = runs.get_run(DEFAULT)
    from kmnist.predict import Predictor
    image = prepare(unknown_pngs[0], run.framing)
    onnx_probs, onnx_score = OnnxPredictor(export.onnx_path(run)).read(image)
    keras_probs, keras_score = Predictor(run.load_model(), unknown.load(run)).read(image)
    _, features = unknown.read(run.load_model(), image[None])
    assert onnx_score == pytest.approx(keras_score, rel=1e-4) == pytest.approx(unknown.load(run).scores(features)[0],
                                                                                rel=1e-4)
    assert unknown.decide(run, onnx_score) == [True]


def test_draw_page_says_none_of_these_and_points_to_all_49(runs_dir):
    from tests.apptest import open_page, texts
    runs.set_active(DEFAULT)
    font = ipa_fonts()[0]

    def canvas(char):  # opaque RGBA, as the server canvas sends
        gray = glyphs.render(char, font)
        return np.dstack([gray, gray, gray, np.full_like(gray, 255)])

    at = open_page(draw_injected_image=canvas("ゐ"))
    assert not at.exception, [e.value for e in at.exception]
    said = texts(at.warning)
    assert "This looks like none of the 10 characters this model knows" in said, said
    links = [e.proto for e in at.get("page_link")]
    assert [(link.page, link.label) for link in links] == [("characters", "How all 49 characters are written")], \
        "no link to where all 49 characters are shown"
    at = open_page(draw_injected_image=canvas("つ"))
    assert "none of the" not in texts(at.warning), "a print つ, a character the model knows, read as unknown"


# Chromium: the live canvas applies the rule in the browser, and Python decides alike on the same framed image.

def drawable_unknown(run, fonts):
    """Strokes of a print character the run does not know, chosen so that drawn they still read unknown with margin."""
    predictor, rule = OnnxPredictor(export.onnx_path(run)), unknown.load(run)
    for char in UNKNOWN_CHARS:
        for font in fonts:
            plan = sketch.strokes(prepare(glyphs.render(char, font), run.framing), size=300)
            drawn = prepare(sketch.render(plan, size=300, width=16), run.framing)
            if predictor.read(drawn)[1] > rule.threshold + 2:
                return char, plan
    pytest.fail("no print character among " + UNKNOWN_CHARS + " reads 'none of these' once drawn")


@pytest.mark.browser
def test_live_canvas_says_none_of_these_and_python_agrees(app_url, page):
    run = runs.get_run(DEFAULT)  # the app's runs dir is empty: the shipped default is active
    char, plan = drawable_unknown(run, ipa_fonts())
    canvas = open_live(page, app_url)
    note = page.locator("[data-testid=live-unknown]")
    assert not note.is_visible(), "'none of these' before any drawing"
    draw(page, canvas, plan)
    page.wait_for_function(f"() => window.kmnistLive.penUp.length >= {len(plan)}")
    note.wait_for(state="visible")
    assert "none of the 10 characters" in note.inner_text()
    assert page.locator("[data-testid=live-top1]").inner_text(), "the nearest character is still named"
    # The very 28x28 the browser's model read, decided in Python by the run's rule.
    framed = np.array(page.locator(".framed").evaluate(
        "c => Array.from(c.getContext('2d').getImageData(0, 0, 28, 28).data).filter((_, i) => i % 4 === 0)"),
        np.uint8).reshape(28, 28)
    _, score = OnnxPredictor(export.onnx_path(run)).read(framed)
    assert unknown.decide(run, score) == [True], f"Python reads the browser's {char} as known (score {score:.2f})"
    page.get_by_text("This looks like none of the 10 characters").wait_for()
    page.screenshot(path=str(ARTIFACTS / "browser-live-unknown.png"))
    page.get_by_role("button", name="Clear").click()
    note.wait_for(state="hidden")


def test_calibrate_refuses_a_share_outside_zero_to_one_in_one_line(capsys):
    assert cli.main(["calibrate", "--run", DEFAULT, "--keep", "1.5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --keep") and err.count("\n") == 1, err


def test_a_run_without_a_rule_answers_and_says_how_to_make_one(runs_dir, unknown_pngs, capsys):
    import shutil
    shutil.copytree(runs.get_run("kmnist6k-seed").path, runs_dir / "no-rule",
                    ignore=shutil.ignore_patterns(unknown.RULE_FILE, unknown.ARRAYS_FILE))
    assert cli.main(["predict", "--run", "no-rule", "--json", str(unknown_pngs[0])]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)[0]["unknown"] is None and json.loads(out.out)[0]["top"]
    assert "python -m kmnist calibrate --run no-rule" in out.err
