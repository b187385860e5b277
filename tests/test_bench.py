"""benchmarks/bench.py: the side-by-side measurement, its imbalance study and its markdown output."""
from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import bench
from kmnist import datasets


def test_imbalanced_copy_keeps_all_of_some_classes_and_a_tenth_of_others(data_dir):
    ds = datasets.load("tiny10", data_dir)
    skewed, keep = bench.imbalanced(ds, seed=0)
    counts = np.bincount(skewed.train.labels, minlength=10)
    full = np.bincount(ds.train.labels, minlength=10)
    assert sorted(keep.values())[-1] == pytest.approx(1.0) and sorted(keep.values())[0] == pytest.approx(0.1)
    for c, share in keep.items():
        assert counts[c] == max(2, round(full[c] * share)), f"class {c} should keep {share:.0%}"
    assert skewed.test is ds.test, "the test split stays balanced and untouched"
    again, keep_again = bench.imbalanced(ds, seed=0)
    assert keep_again == keep and np.array_equal(again.train.images, skewed.train.images), "seeded"


def test_markdown_section_is_replaced_and_the_rest_kept(tmp_path):
    results = {"machine": {"when": "t", "cpu": "cpu", "usable_cores": 2, "logical_cores": 2,
                           "loadavg_1_5_15": [0, 0, 0], "python": "3", "tensorflow": "2", "keras": "3"},
               "dataset": "d", "quick": True, "wall_seconds": 1.0, "latency": "l", "peak_memory": "m",
               "models": []}
    md = tmp_path / "B.md"
    md.write_text("# Benchmarks\n\nintro\n\n<!-- bench:start -->\nold\n<!-- bench:end -->\n\noutro\n")
    bench.write(results, tmp_path / "r.json", md)
    text = md.read_text()
    assert "intro" in text and "outro" in text and "old" not in text and "| arch |" in text
    assert json.loads((tmp_path / "r.json").read_text())["dataset"] == "d"


@pytest.mark.slow
def test_quick_bench_measures_both_models_and_the_studies(data_dir, tmp_path, capsys):
    out, md = tmp_path / "results.json", tmp_path / "BENCH.md"
    code = bench.main(["--quick", "--dataset", "tiny10", "--data-dir", str(data_dir),
                     "--out", str(out), "--markdown", str(md)])
    assert code == 0
    results = json.loads(out.read_text())
    assert [(m["arch"], m["path"]) for m in results["models"]] == [
        ("seed", "preset"), ("resnet-bn", "old"), ("resnet-bn-wide", "preset")], "the flagship also as it was before"
    assert results["models"][1]["config"]["fused_bn"] is False and results["models"][2]["config"]["fused_bn"]
    assert results["models"][1]["config"]["precision"] == "float32", "the old row is the flagship before issue 9"
    speed = results["speed"]
    assert len(speed["old_epoch_s"]) == len(speed["new_epoch_s"]) == 1 and speed["speedup"] > 0
    for m in results["models"]:
        assert 0 <= m["accuracy"] <= 1 and m["params"] > 0 and m["model_bytes"] > 0
        assert m["latency_ms"]["predictor"]["p50"] > 0 and m["latency_ms"]["predictor"]["calls"] == 30
        assert m["batch256_images_per_s"] > 0 and m["peak_rss_mb"] > 0
    assert [r["class_weighting"] for r in results["imbalance"]["runs"]] == ["none", "balanced"]
    assert results["k49_cost"]["epoch_seconds"] > 0 and results["k49_cost"]["steps_per_epoch"] > 0
    assert results["machine"]["usable_cores"] >= 1 and "loadavg_1_5_15" in results["machine"]
    text = md.read_text()
    assert "`resnet-bn`" in text and "Imbalance study" in text and "K49 cost estimate" in text
    assert "Speed-up, interleaved" in text and "| `resnet-bn` | old |" in text
    assert "They differ in `arch` resnet-bn → resnet-bn-wide, `fused_bn` False → True, `precision` float32 → mixed_bfloat16" in text
    assert "| `seed` |" in capsys.readouterr().out
