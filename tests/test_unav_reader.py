"""UnAV-100 reader on the real annotation file, and its errors."""
import json

import pytest

from avvp_dist.data.annotations import AnnotationError, segment_labels
from avvp_dist.data.unav100 import UNAV100_CLASSES, read_unav100_annotations
from conftest import repo_file


@pytest.fixture(scope="module")
def unav():
    return read_unav100_annotations(repo_file("annotations", "unav100", "unav100_annotations.json"))


def test_counts(unav):
    assert [len(unav.split(s)) for s in ("train", "val", "test")] == [6489, 2134, 2167]
    assert unav.classes == UNAV100_CLASSES and unav.classes[:2] == ["man speaking", "woman speaking"]
    assert sum(len(r.events) for s in ("train", "val", "test") for r in unav.split(s)) == 30059
    assert unav.quirks["events"] == 30059 and not unav.quirks["empty_events"]


def test_labels_are_the_event_classes(unav):
    raw = json.loads(repo_file("annotations", "unav100", "unav100_annotations.json").read_text())["database"]
    for rec in unav.split("test")[:200]:
        assert set(rec.labels) == {a["label"] for a in raw[rec.vid]["annotations"]}
        assert rec.duration == raw[rec.vid]["duration"]
        assert all(e.modality == "av" for e in rec.events)


def test_av_events_mark_both_modalities():
    from avvp_dist.data.annotations import Event

    gt = segment_labels([Event("x", "av", 0.64, 1.28)], ["x"], 5, segment_s=0.32)
    assert gt[:, 0].tolist() == [[0, 0, 1, 1, 0]] * 2


def _doc(**video):
    v = {"duration": 20.0, "subset": "train",
         "annotations": [{"segment": [1.0, 2.0], "label": "man speaking", "label_id": 0}]}
    v.update(video)
    other = {"duration": 10.0, "subset": "validation",
             "annotations": [{"segment": [0, 3], "label": "dog barking", "label_id": 12}]}
    test = {"duration": 10.0, "subset": "test", "annotations": []}
    return {"version": "x", "database": {"v1": v, "v2": other, "v3": test}}


@pytest.mark.parametrize("video, fragment", [
    ({"subset": "training"}, "subset 'training'"),
    ({"duration": -1}, "duration -1"),
    ({"annotations": [{"segment": [1, 2], "label": "dog barking", "label_id": 0}]},
     "video 'v1': label 'dog barking' has label_id 0, expected 12"),
    ({"annotations": [{"segment": [1, 2], "label": "unicorn", "label_id": 0}]}, "label 'unicorn' is not in the class list"),
    ({"annotations": [{"segment": [1], "label": "man speaking", "label_id": 0}]}, r"segment \[1\]"),
])
def test_malformed(tmp_path, video, fragment):
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(_doc(**video)))
    with pytest.raises(AnnotationError, match=fragment):
        read_unav100_annotations(path)


def test_clipped_and_missing_database(tmp_path):
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(_doc(annotations=[{"segment": [15.0, 25.0], "label": "man speaking", "label_id": 0}])))
    ann = read_unav100_annotations(path)
    assert ann.quirks["events_clipped_to_duration"] == 1 and ann.split("train")[0].events[0].offset == 20.0
    path.write_text("{}")
    with pytest.raises(AnnotationError, match="missing top-level 'database'"):
        read_unav100_annotations(path)
