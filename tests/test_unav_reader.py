"""UnAV-100 reader on the real annotation file, and its errors."""
import json

import pytest

from avvp_dist.data.annotations import AnnotationError, segment_labels
from avvp_dist.datasets.unav100 import UNAV100_CLASSES, read_unav100_annotations
from conftest import repo_file


@pytest.fixture(scope="module")
def unav():
    return read_unav100_annotations(repo_file("annotations", "unav100", "unav100_annotations.json"))


def test_counts(unav):
    assert [len(unav.split(s)) for s in ("train", "val", "test")] == [6489, 2134, 2167]
    assert unav.classes == UNAV100_CLASSES and unav.classes[:2] == ["man speaking", "woman speaking"]
    assert sum(len(r.events) for s in ("train", "val", "test") for r in unav.split(s)) == 30059
    assert unav.quirks["events"] == 30059
    assert not any(k.endswith("_dropped") or k.endswith("_clipped_to_duration") for k in unav.quirks)


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
    ({"duration": float("nan")}, "video 'v1': duration nan is not a positive finite number"),
    ({"annotations": ["man speaking"]}, "video 'v1': annotation 0 is a str, expected an object"),
    ({"annotations": {"segment": [1, 2]}}, "video 'v1': 'annotations' is a dict, expected a list"),
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


def test_entry_not_an_object(tmp_path):
    doc = _doc()
    doc["database"]["v4"] = [20.0, "train"]
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(AnnotationError, match="video 'v4': entry is a list, expected an object"):
        read_unav100_annotations(path)


def test_events_outside_the_video_or_reversed_are_dropped_and_named(tmp_path):
    """[200, 210] on a 20 s video covers none of it: dropped, counted, named, and it adds no
    weak label (it was clipped into a reversed [200, 20] event before); so is [5, 3]."""
    path = tmp_path / "ann.json"
    anns = [{"segment": [1.0, 2.0], "label": "man speaking", "label_id": 0},
            {"segment": [200, 210], "label": "dog barking", "label_id": 12},
            {"segment": [20.0, 21.0], "label": "dog barking", "label_id": 12},
            {"segment": [5, 3], "label": "cat meowing", "label_id": 22}]
    path.write_text(json.dumps(_doc(annotations=anns)))
    ann = read_unav100_annotations(path)
    (rec,) = ann.split("train")
    assert rec.labels == ("man speaking",) and [(e.onset, e.offset) for e in rec.events] == [(1.0, 2.0)]
    assert ann.quirks["events_outside_video_dropped"] == 2 and ann.quirks["reversed_events_dropped"] == 1
    assert ann.examples["events_outside_video_dropped"] == ["v1 [200, 210] of 20.0 s", "v1 [20.0, 21.0] of 20.0 s"]
    assert ann.examples["reversed_events_dropped"] == ["v1 [5, 3]"]
    assert "unav100: reversed_events_dropped: 1 (e.g. v1 [5, 3])" in ann.report()


def test_clipped_and_missing_database(tmp_path):
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(_doc(annotations=[{"segment": [15.0, 25.0], "label": "man speaking", "label_id": 0}])))
    ann = read_unav100_annotations(path)
    assert ann.quirks["events_clipped_to_duration"] == 1 and ann.split("train")[0].events[0].offset == 20.0
    path.write_text("{}")
    with pytest.raises(AnnotationError, match="missing top-level 'database'"):
        read_unav100_annotations(path)
