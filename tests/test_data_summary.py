"""What each dataset in the data dir holds."""
from kmnist import data_summary


def test_summaries_of_present_partial_and_absent_datasets(data_dir):
    (data_dir / "tiny10" / "tiny10-train-imgs.npz").unlink()
    found = {s.name: s for s in data_summary.summarise_all(data_dir)}
    tiny49, tiny10, k49 = found["tiny49"], found["tiny10"], found["k49"]
    assert (tiny49.state, tiny49.classes, tiny49.train_size, tiny49.test_size) == ("complete", 49, 49 * 12, 49 * 4)
    assert (tiny10.state, tiny10.train_images, tiny10.test_images) == ("partial", False, True)
    assert tiny10.train_size == 300, "sizes come from the labels, with or without images"
    assert (k49.state, k49.has_labels, k49.classes) == ("absent", False, None)
    rows = {r["dataset"]: r for r in data_summary.table(list(found.values()))}
    assert rows["tiny10"]["images"] == "test" and rows["tiny10"]["missing"] == "tiny10-train-imgs.npz"
    assert rows["tiny49"]["images"] == "train + test" and rows["tiny49"]["missing"] == "—"
    assert rows["k49"]["missing"] == "all files"
