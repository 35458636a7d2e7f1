"""LLP segment- and event-level F1, vectorised over videos and classes (HAN's protocol).

Inputs are binary arrays (N, C, T): predictions and ground truth for audio and visual;
audio-visual is their product. Per video and class, TP/FP/FN are summed over the
segments (segment level) or counted over events, runs of consecutive positive
segments, where a predicted event is a TP if its IoU with some GT event of the class is
>= 0.5 and a GT event matched by no prediction is an FN (event level). A class counts
for a video if it is in the prediction or the GT; a video's F1 is the mean over counted
classes, 1.0 if none. The reported numbers are means over videos, x100:
A, V, AV, Type@AV = mean(A, V, AV), Event@AV (TP, FP, FN of A and V summed).
"""
from __future__ import annotations

import numpy as np

from avvp_dist.eval.runs import run_bounds

METRIC_NAMES = ["seg_a", "seg_v", "seg_av", "seg_type", "seg_event",
                "evt_a", "evt_v", "evt_av", "evt_type", "evt_event"]


def _check(**arrays: np.ndarray) -> tuple[int, int, int]:
    shapes = {k: np.shape(v) for k, v in arrays.items()}
    if len(set(shapes.values())) != 1 or len(next(iter(shapes.values()))) != 3:
        raise ValueError(f"predictions and ground truth must all be (N, C, T) and equal; got {shapes}")
    return next(iter(shapes.values()))


def video_f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Per-video F1 (N,) from per-class counts (N, C): mean over classes in prediction or GT, else 1."""
    counted = (tp + fp > 0) | (tp + fn > 0)
    f = np.where(counted, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
    n = counted.sum(1)
    return np.where(n > 0, f.sum(1) / np.maximum(n, 1), 1.0)


def segment_counts(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(TP, FP, FN) per video and class (N, C), summed over segments."""
    pred, gt = pred.astype(bool, copy=False), gt.astype(bool, copy=False)
    T = pred.shape[-1]
    if T <= 24:  # each row as a bit mask (exact in float32), then population counts
        bits = 2.0 ** np.arange(T, dtype=np.float32)
        cp, cg = ((x.astype(np.float32) @ bits).astype(np.uint32) for x in (pred, gt))
        tp = np.bitwise_count(cp & cg).astype(np.int64)
        return tp, np.bitwise_count(cp).astype(np.int64) - tp, np.bitwise_count(cg).astype(np.int64) - tp
    tp = np.count_nonzero(pred & gt, axis=-1)
    return tp, np.count_nonzero(pred, axis=-1) - tp, np.count_nonzero(gt, axis=-1) - tp


def event_counts(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(TP, FP, FN) per video and class (N, C) over events with the IoU >= 0.5 rule."""
    N, C, T = pred.shape
    tp, fp, fn = (np.zeros(N * C, np.int64) for _ in range(3))
    pred, gt = pred.reshape(N * C, T).astype(bool, copy=False), gt.reshape(N * C, T).astype(bool, copy=False)
    ones = np.ones(T, np.float32)
    active = np.flatnonzero((pred | gt).astype(np.float32) @ ones)  # most (video, class) rows are empty
    ps, pe = run_bounds(pred[active])
    gs, ge = run_bounds(gt[active])
    inter = np.minimum(pe[:, :, None], ge[:, None, :]) - np.maximum(ps[:, :, None], gs[:, None, :])
    np.maximum(inter, 0, out=inter)
    len_p, len_g = pe - ps, ge - gs
    union = len_p[:, :, None] + len_g[:, None, :] - inter
    match = (2 * inter >= union) & (inter > 0)  # IoU >= 0.5, exactly; empty runs never intersect
    # reductions over the few runs, written as slice operations (numpy reduces tiny axes slowly)
    M, Rp, Rg = match.shape
    pred_hit = np.zeros((M, Rp), bool)  # the predicted run matches some GT run
    gt_hit = np.zeros((M, Rg), bool)  # the GT run is matched by some predicted run
    for r in range(Rg):
        pred_hit |= match[:, :, r]
    for r in range(Rp):
        gt_hit |= match[:, r, :]
    n_p, n_g = (len_p > 0).sum(1), (len_g > 0).sum(1)
    tp[active] = pred_hit.sum(1)
    fp[active] = n_p - tp[active]
    fn[active] = n_g - gt_hit.sum(1)
    return tp.reshape(N, C), fp.reshape(N, C), fn.reshape(N, C)


def llp_video_scores(pred_a, pred_v, gt_a, gt_v) -> dict[str, np.ndarray]:
    """Per-video F1 (N,) for a, v, av and the combined event score, at both levels."""
    _check(pred_a=pred_a, pred_v=pred_v, gt_a=gt_a, gt_v=gt_v)
    pred_a, pred_v, gt_a, gt_v = (np.asarray(x).astype(bool, copy=False) for x in (pred_a, pred_v, gt_a, gt_v))
    pred_av, gt_av = pred_a & pred_v, gt_a & gt_v
    out = {}
    n = len(pred_a)
    preds, gts = np.concatenate([pred_a, pred_v, pred_av]), np.concatenate([gt_a, gt_v, gt_av])
    for level, counts in (("seg", segment_counts), ("evt", event_counts)):
        tp, fp, fn = counts(preds, gts)  # a, v, av stacked along videos: one pass each
        a, v, av = ((tp[i * n:(i + 1) * n], fp[i * n:(i + 1) * n], fn[i * n:(i + 1) * n]) for i in range(3))
        out[f"{level}_a"], out[f"{level}_v"], out[f"{level}_av"] = video_f1(*a), video_f1(*v), video_f1(*av)
        out[f"{level}_event"] = video_f1(*(x + y for x, y in zip(a, v)))
    return out


def llp_metrics(pred_a, pred_v, gt_a, gt_v) -> dict[str, float]:
    """The 10 numbers every AVVP paper reports, in percent."""
    s = llp_video_scores(pred_a, pred_v, gt_a, gt_v)
    out = {}
    for level in ("seg", "evt"):
        a, v, av = (100 * float(np.mean(s[f"{level}_{m}"])) for m in ("a", "v", "av"))
        out.update({f"{level}_a": a, f"{level}_v": v, f"{level}_av": av, f"{level}_type": (a + v + av) / 3,
                    f"{level}_event": 100 * float(np.mean(s[f"{level}_event"]))})
    return {k: out[k] for k in METRIC_NAMES}
