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
    pred, gt = pred.astype(np.int64), gt.astype(np.int64)
    return (pred * gt).sum(-1), (pred * (1 - gt)).sum(-1), ((1 - pred) * gt).sum(-1)


def run_ids(x: np.ndarray) -> np.ndarray:
    """Event runs of a binary (..., T) array: 0 off-event, k >= 1 in the k-th run."""
    x = x.astype(bool)
    starts = x & ~np.concatenate([np.zeros_like(x[..., :1]), x[..., :-1]], axis=-1)
    return np.cumsum(starts, axis=-1) * x


def event_counts(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(TP, FP, FN) per video and class (N, C) over events with the IoU >= 0.5 rule."""
    T = pred.shape[-1]
    R = (T + 1) // 2  # most runs a length-T sequence can hold
    k = np.arange(1, R + 1)
    p_on = run_ids(pred)[..., None, :] == k[:, None]  # (N, C, R, T)
    g_on = run_ids(gt)[..., None, :] == k[:, None]
    inter = np.einsum("ncrt,ncst->ncrs", p_on.astype(np.int32), g_on.astype(np.int32))
    len_p, len_g = p_on.sum(-1), g_on.sum(-1)  # (N, C, R)
    union = len_p[..., :, None] + len_g[..., None, :] - inter
    match = (2 * inter >= union) & (len_p[..., :, None] > 0) & (len_g[..., None, :] > 0)
    tp = match.any(-1).sum(-1)
    fp = (len_p > 0).sum(-1) - tp
    fn = ((len_g > 0) & ~match.any(-2)).sum(-1)
    return tp, fp, fn


def llp_video_scores(pred_a, pred_v, gt_a, gt_v) -> dict[str, np.ndarray]:
    """Per-video F1 (N,) for a, v, av and the combined event score, at both levels."""
    _check(pred_a=pred_a, pred_v=pred_v, gt_a=gt_a, gt_v=gt_v)
    pred_av, gt_av = pred_a * pred_v, gt_a * gt_v
    out = {}
    for level, counts in (("seg", segment_counts), ("evt", event_counts)):
        a, v, av = counts(pred_a, gt_a), counts(pred_v, gt_v), counts(pred_av, gt_av)
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
