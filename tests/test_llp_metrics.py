"""LLP metrics: HAN's evaluator golden file, hand cases, and a plain loop reference."""
import json

import numpy as np
import pytest

from avvp_dist.eval.llp_metrics import METRIC_NAMES, event_counts, llp_metrics, llp_video_scores
from avvp_dist.eval.protocol import PROTOCOLS, binarize, calibrate_thresholds
from conftest import repo_file


def test_golden_file_matches_hans_evaluator():
    z = np.load(repo_file("tests", "golden", "llp_metric_golden.npz"))
    want = json.loads(repo_file("tests", "golden", "llp_metric_golden.json").read_text())
    got = llp_metrics(z["pred_a"], z["pred_v"], z["gt_a"], z["gt_v"])
    for k in METRIC_NAMES:
        assert abs(got[k] - want[k]) <= 1e-9, (k, got[k], want[k])
    per = llp_video_scores(z["pred_a"], z["pred_v"], z["gt_a"], z["gt_v"])
    cols = ["seg_a", "seg_v", "seg_event", "seg_av", "evt_a", "evt_v", "evt_event", "evt_av"]
    for j, k in enumerate(cols):
        np.testing.assert_allclose(per[k], z["per_video"][:, j], rtol=0, atol=1e-12, err_msg=k)


# ---- a deliberately plain reference, straight from the definition -----------------

def _runs(seq):
    out, t = [], 0
    while t < len(seq):
        if seq[t]:
            s = t
            while t < len(seq) and seq[t]:
                t += 1
            out.append((s, t))
        else:
            t += 1
    return out


def _iou(a, b):
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    return inter / ((a[1] - a[0]) + (b[1] - b[0]) - inter)


def _counts(pred, gt, level):
    tp = fp = fn = 0
    if level == "seg":
        for p, g in zip(pred, gt):
            tp += p and g
            fp += p and not g
            fn += g and not p
        return tp, fp, fn
    pe, ge = _runs(pred), _runs(gt)
    for e in pe:
        if any(_iou(e, g) >= 0.5 for g in ge):
            tp += 1
        else:
            fp += 1
    for g in ge:
        if not any(_iou(e, g) >= 0.5 for e in pe):
            fn += 1
    return tp, fp, fn


def _f(counts):
    fs = [2 * tp / (2 * tp + fp + fn) for tp, fp, fn in counts if tp + fp or tp + fn]
    return sum(fs) / len(fs) if fs else 1.0


def plain_metrics(pa, pv, ga, gv):
    out = {}
    for level in ("seg", "evt"):
        per = {"a": [], "v": [], "av": [], "event": []}
        for n in range(len(pa)):
            ca = [_counts(list(pa[n, c]), list(ga[n, c]), level) for c in range(pa.shape[1])]
            cv = [_counts(list(pv[n, c]), list(gv[n, c]), level) for c in range(pa.shape[1])]
            cav = [_counts(list(pa[n, c] * pv[n, c]), list(ga[n, c] * gv[n, c]), level) for c in range(pa.shape[1])]
            per["a"].append(_f(ca))
            per["v"].append(_f(cv))
            per["av"].append(_f(cav))
            per["event"].append(_f([tuple(x + y for x, y in zip(a, v)) for a, v in zip(ca, cv)]))
        for k in ("a", "v", "av"):
            out[f"{level}_{k}"] = 100 * sum(per[k]) / len(per[k])
        out[f"{level}_type"] = (out[f"{level}_a"] + out[f"{level}_v"] + out[f"{level}_av"]) / 3
        out[f"{level}_event"] = 100 * sum(per["event"]) / len(per["event"])
    return out


def test_random_videos_match_the_plain_reference():
    rng = np.random.default_rng(0)
    n, C, T = 2000, 6, 10
    arrays = []
    for density in (0.15, 0.5):
        arrays.append((rng.random((4, n, C, T)) < density).astype(np.int8))
    a = np.concatenate(arrays, axis=1)
    a[:, :50] = 0  # some all-empty videos
    got, want = llp_metrics(*a), plain_metrics(*a)
    for k in METRIC_NAMES:
        assert abs(got[k] - want[k]) <= 1e-9, k


def _one(pred, gt):
    return np.array(pred, np.int8)[None, None], np.array(gt, np.int8)[None, None]


@pytest.mark.parametrize("pred, gt, counts", [
    ([0, 0, 1, 1, 0, 0, 0, 0, 0, 0], [0, 0, 1, 1, 1, 1, 0, 0, 0, 0], (1, 0, 0)),  # IoU exactly 0.5 is a TP
    ([0, 0, 1, 0, 0, 0, 0, 0, 0, 0], [0, 0, 1, 1, 1, 0, 0, 0, 0, 0], (0, 1, 1)),  # IoU 1/3
    ([0, 0, 0, 0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 0, 0, 0, 0, 1, 1], (1, 0, 0)),  # touching the clip end
    ([1, 1, 0, 1, 1, 0, 1, 0, 0, 0], [1, 1, 0, 1, 1, 1, 1, 0, 0, 0], (2, 1, 0)),  # several events; (3,5) vs (3,7) is IoU 0.5
    ([1, 1, 1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1], (1, 0, 0)),  # whole clip
    ([0] * 10, [0] * 10, (0, 0, 0)),
])
def test_event_counts_by_hand(pred, gt, counts):
    tp, fp, fn = event_counts(*_one(pred, gt))
    assert (int(tp[0, 0]), int(fp[0, 0]), int(fn[0, 0])) == counts


def test_hand_cases_for_video_scores():
    z = np.zeros((1, 3, 10), np.int8)
    # a video with no events and no predictions scores 1
    assert llp_metrics(z, z, z, z)["seg_a"] == 100.0 and llp_metrics(z, z, z, z)["evt_event"] == 100.0
    # a class only in the prediction counts (F = 0) beside a perfect class (F = 1): 50
    gt = z.copy()
    gt[0, 0, :4] = 1
    pred = gt.copy()
    pred[0, 2, 5:7] = 1
    m = llp_metrics(pred, z, gt, z)
    assert m["seg_a"] == pytest.approx(50.0) and m["evt_a"] == pytest.approx(50.0)
    # all-zero predictions against events: 0
    assert llp_metrics(z, z, gt, gt)["seg_av"] == 0.0


def test_mismatched_shapes_are_clear_errors():
    z = np.zeros((2, 25, 10), np.int8)
    with pytest.raises(ValueError, match=r"must all be \(N, C, T\) and equal"):
        llp_metrics(z, z, z, z[:, :24])
    with pytest.raises(ValueError, match="gt_v"):
        llp_metrics(z, z, z, z[:1])


def test_protocol_presets():
    P = np.zeros((1, 10, 2, 2))
    P[0, :3, 0, 0] = 0.3
    P[0, :3, 1, 0] = 0.6
    p, p_a, p_v = np.array([[0.6, 0.1]]), np.array([[0.2, 0.0]]), np.array([[0.7, 0.0]])
    pa, pv = binarize(P, p, p_a, p_v, PROTOCOLS["han"])
    assert pa.sum() == 0 and pv[0, 0, :3].all() and pv.sum() == 3
    pa, _ = binarize(P, p, p_a, p_v, PROTOCOLS["low_threshold"])
    assert pa[0, 0, :3].all() and pa.sum() == 3
    pa, pv = binarize(P, p, p_a, p_v, PROTOCOLS["modality"])  # p_a = 0.2 filters audio out
    assert pa.sum() == 0 and pv.sum() == 3


def test_calibrated_thresholds_recover_a_shifted_class():
    rng = np.random.default_rng(1)
    gt = (rng.random((200, 2, 10)) < 0.3).astype(np.int8)
    P = np.where(gt.transpose(0, 2, 1)[:, :, None, :] == 1, 0.35, 0.15) + 0 * rng.random((200, 10, 2, 2))
    ones = np.ones((200, 2))
    thr = calibrate_thresholds(P, ones, ones, ones, gt, gt, PROTOCOLS["han"])
    assert np.all((thr > 0.15) & (thr <= 0.35))
    pa, pv = binarize(P, ones, ones, ones, PROTOCOLS["han"], thr)
    assert np.array_equal(pa, gt) and np.array_equal(pv, gt)
