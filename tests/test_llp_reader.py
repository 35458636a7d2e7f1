"""LLP reader on the real annotation files, and its errors on malformed ones."""
import csv

import numpy as np
import pytest

from avvp_dist.data.annotations import AnnotationError, segment_labels
from avvp_dist.datasets.llp import LLP_CLASSES, read_llp_annotations, read_weak_csv
from conftest import repo_file


@pytest.fixture(scope="module")
def llp():
    return read_llp_annotations(repo_file("annotations", "llp"))


def test_split_sizes_and_classes(llp):
    assert [len(llp.split(s)) for s in ("train", "val", "test")] == [10000, 649, 1200]
    assert llp.classes == LLP_CLASSES and len(llp.classes) == 25
    assert all(r.events is None for r in llp.split("train"))


def test_quirk_counts(llp):
    q = llp.quirks
    # all rows of the two dense files
    assert q["dense_rows/audio"] + q["dense_rows_outside_splits/audio"] == 4131
    assert q["dense_rows/visual"] + q["dense_rows_outside_splits/visual"] == 2495
    assert (q["dense_rows_outside_splits/audio"], q["dense_rows_outside_splits/visual"]) == (14, 11)
    assert (q["zero_length_rows/audio"], q["zero_length_rows/visual"]) == (5, 0)
    assert (q["reversed_rows/audio"], q["reversed_rows/visual"]) == (1, 0)  # 8DF2PxdT5tE_390_400: 9 -> 0
    assert (q["dense_labels_outside_weak/audio"], q["dense_labels_outside_weak/visual"]) == (76, 51)
    assert q["weak_labels_without_dense"] == 35
    # 23 overlapping pairs of same-class rows (8 of them exact duplicates), 42 rows involved
    assert (q["overlapping_row_pairs/audio"], q["overlapping_rows/audio"]) == (23, 42)
    assert q["overlapping_row_pairs/visual"] == 0


def test_dense_gt_is_built_from_rows_as_they_are(llp):
    """GT[c, onset:offset] = 1 from the raw rows, written independently of the reader."""
    expected = {}
    ids = {r.vid for s in ("val", "test") for r in llp.split(s)}
    for m, name in enumerate(["AVVP_eval_audio.csv", "AVVP_eval_visual.csv"]):
        with open(repo_file("annotations", "llp", name)) as f:
            for row in list(csv.reader(f, delimiter="\t"))[1:]:
                if row[0] in ids:
                    gt = expected.setdefault(row[0], np.zeros((2, 25, 10), np.uint8))
                    gt[m, LLP_CLASSES.index(row[3]), int(row[1]):int(row[2])] = 1
    for rec in llp.split("val") + llp.split("test"):
        got = segment_labels(rec.events, llp.classes, 10)
        np.testing.assert_array_equal(got, expected.get(rec.vid, np.zeros((2, 25, 10), np.uint8)), err_msg=rec.vid)


def test_overlap_and_zero_length_policy():
    from avvp_dist.data.annotations import Event

    events = [Event("Dog", "audio", 2, 5), Event("Dog", "audio", 4, 7), Event("Dog", "audio", 3, 3),
              Event("Cat", "visual", 0, 10)]
    gt = segment_labels(events, LLP_CLASSES, 10)
    assert gt[0, 3].tolist() == [0, 0, 1, 1, 1, 1, 1, 0, 0, 0]
    assert gt[1, 4].sum() == 10 and gt.sum() == 15


def _write(path, text):
    path.write_text(text)
    return path


def _folder(tmp_path, **files):
    base = {
        "AVVP_train.csv": "filename\tevent_labels\nA_0_10\tSpeech,Dog\n",
        "AVVP_val_pd.csv": "filename\tevent_labels\nB_0_10\tDog\n",
        "AVVP_test_pd.csv": "filename\tevent_labels\nC_0_10\tCat\n",
        "AVVP_eval_audio.csv": "filename\tonset\toffset\tevent_labels\nB_0_10\t0\t4\tDog\n",
        "AVVP_eval_visual.csv": "filename\tonset\toffset\tevent_labels\nC_0_10\t2\t10\tCat\n",
    }
    base.update(files)
    for name, text in base.items():
        _write(tmp_path / name, text)
    return tmp_path


def test_minimal_folder_reads(tmp_path):
    ann = read_llp_annotations(_folder(tmp_path))
    (b,) = ann.split("val")
    assert b.labels == ("Dog",) and segment_labels(b.events, LLP_CLASSES, 10)[0, 3, :4].all()


@pytest.mark.parametrize("name, text, fragment", [
    ("AVVP_train.csv", "filename,event_labels\nA_0_10,Speech\n", "comma-separated"),
    ("AVVP_train.csv", "video\tlabels\nA_0_10\tSpeech\n", "expected tab-separated header"),
    ("AVVP_train.csv", "filename\tevent_labels\nA_0_10\tSpeech\textra\n", r"AVVP_train.csv:2: expected 2"),
    ("AVVP_train.csv", "filename\tevent_labels\nA_0_10\tSpeech\nA_0_10\tDog\n", "AVVP_train.csv:3: duplicate video id 'A_0_10'"),
    ("AVVP_train.csv", "filename\tevent_labels\nA_0_10\tUnicorn\n", "label 'Unicorn' is not an LLP class"),
    ("AVVP_val_pd.csv", "filename\tevent_labels\n", "AVVP_val_pd.csv: empty split"),
    ("AVVP_eval_audio.csv", "filename\tonset\toffset\tevent_labels\nB_0_10\t5\t11\tDog\n", "must lie in 0..10"),
    ("AVVP_eval_audio.csv", "filename\tonset\toffset\tevent_labels\nB_0_10\t0.5\t3\tDog\n", "not integer seconds"),
    ("AVVP_test_pd.csv", "filename\tevent_labels\nB_0_10\tDog\n", "'B_0_10' is in both val and test"),
])
def test_malformed_files_name_file_and_row(tmp_path, name, text, fragment):
    with pytest.raises(AnnotationError, match=fragment) as e:
        read_llp_annotations(_folder(tmp_path, **{name: text}))
    assert name in str(e.value) or "both" in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(AnnotationError, match="AVVP_train.csv: file not found"):
        read_weak_csv(tmp_path / "AVVP_train.csv")
