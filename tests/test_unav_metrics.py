"""UnAV-100 metrics: mAP, events from rows, one-second bins."""
import numpy as np
import pytest

from avvp_dist.data.datasets import data_spec
from avvp_dist.data.timegrid import TimeGrid
from avvp_dist.eval.unav_metrics import (TIOU, av_bin_f1, average_precision, gt_bins, interpolated_ap, pred_bins,
                                         unav_map, video_map)


def _gts(seed=0, videos=30, classes=4):
    rng = np.random.default_rng(seed)
    out = {}
    for v in range(videos):
        evs, t = [], 0.0
        for _ in range(3):
            s = t + rng.uniform(0, 5)
            e = s + rng.uniform(1, 8)
            evs.append((int(rng.integers(classes)), s, e))
            t = e
        out[f"v{v}"] = evs
    return out


def test_perfect_predictions_give_100_at_every_threshold():
    gts = _gts()
    preds = {v: [(c, s, e, 1.0) for c, s, e in evs] for v, evs in gts.items()}
    m = unav_map(preds, gts, 4)
    assert all(m[f"map@{t:.1f}"] == pytest.approx(100.0) for t in TIOU) and m["map_mean"] == pytest.approx(100.0)


def test_shifted_predictions_lose_ap_at_high_tiou_first():
    gts = _gts()
    preds = {v: [(c, s + 0.2 * (e - s), e + 0.2 * (e - s), 1.0) for c, s, e in evs] for v, evs in gts.items()}
    m = unav_map(preds, gts, 4)
    aps = [m[f"map@{t:.1f}"] for t in TIOU]
    assert aps[0] == pytest.approx(100.0) and aps[-1] == 0.0
    assert all(a >= b for a, b in zip(aps, aps[1:]))  # tIoU 0.8 / 1.2 = 0.67: 0.6 matches, 0.7 does not
    assert aps[5] == pytest.approx(100.0) and aps[6] == 0.0


def test_ap_by_hand():
    # 2 GT; predictions by score: TP, FP, TP -> precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1
    assert interpolated_ap(np.array([1, 0, 1]), 2) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    gts = [("a", 0.0, 2.0), ("a", 5.0, 6.0)]
    preds = [("a", 0.0, 2.0, 0.9), ("a", 0.1, 2.0, 0.8), ("a", 5.0, 6.0, 0.7)]  # the second is a duplicate: FP
    assert average_precision(preds, gts, np.array([0.5]))[0] == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert average_precision(preds, [], np.array([0.5]))[0] == 0.0


def test_video_map_by_hand():
    # class 0: positives ranked 1st and 3rd -> (1/1 + 2/3) / 2; class 1: its one positive ranked 2nd -> 1/2;
    # class 2 has no positive video and is left out
    p = np.array([[0.9, 0.1, 0.5], [0.8, 0.7, 0.2], [0.3, 0.9, 0.1]])
    y = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0]])
    assert video_map(p, y) == pytest.approx(100 * ((1 + 2 / 3) / 2 + 1 / 2) / 2)
    assert video_map(p, np.zeros_like(y)) == 0.0


def test_bins():
    g = gt_bins([(0, 0.4, 2.6)], duration=3.2, num_classes=1)
    assert g.tolist() == [[1, 1, 1, 0]]  # bin 0 covered 0.6, bin 2 covered 0.6, bin 3 not at all
    rows = np.zeros((10, 1), bool)
    rows[:2] = True  # rows 0-1 (centres 0.48, 0.80 s on UnAV-100's grid): bin 0's rows
    assert pred_bins(rows, 4, data_spec("unav100").grid).tolist() == [[1, 0, 0, 0]]
    assert pred_bins(rows, 4, TimeGrid(0.32)).tolist() == [[1, 0, 0, 0]]  # the old grid: rows 0-2 in bin 0
    rows[:2], rows[2:4] = False, True  # rows 2-3 (centres 1.12, 1.44): bin 1 on the official grid
    assert pred_bins(rows, 4, data_spec("unav100").grid).tolist() == [[0, 1, 0, 0]]
    f = av_bin_f1([g], [g])
    assert f == {"seg_av": 100.0, "evt_av": 100.0}


def test_mismatched_videos_and_classes_are_errors():
    gts = {"a": [(0, 0.0, 1.0)]}
    with pytest.raises(ValueError, match="without ground truth, e.g. \\['b'\\]"):
        unav_map({"b": [(0, 0.0, 1.0, 1.0)]}, gts, 2)
    with pytest.raises(ValueError, match="class ids \\[5\\] outside 0..1"):
        unav_map({"a": [(5, 0.0, 1.0, 1.0)]}, gts, 2)
