"""UnAV-100 metrics: ActivityNet-style detection mAP, video-level classification mAP, and AV
segment/event F1 on one-second bins (docs/evaluation.md).

Detection mAP at tIoU 0.1..0.9 scores the detections of `eval.detection` (no confidence
gate): per class, predictions by descending score, each GT event matched at most once per
threshold (the unmatched GT of highest tIoU), AP from the interpolated precision-recall
curve, averaged over the classes with at least one GT event. Video-level mAP: the
non-interpolated AP of p_c over videos, per class, averaged over the classes with positives.
F1 bins, at explicit thresholds: a GT bin of one second is positive if a GT event covers at
least half of it; a predicted bin if at least half its rows are positive.
"""
from __future__ import annotations

import numpy as np

from avvp_dist.data.timegrid import TimeGrid
from avvp_dist.eval.llp_metrics import event_counts, segment_counts, video_f1

TIOU = np.round(np.arange(0.1, 1.0, 0.1), 1)


def tiou(seg: np.ndarray, segs: np.ndarray) -> np.ndarray:
    """Temporal IoU of one [start, end] with each row of (K, 2)."""
    inter = np.clip(np.minimum(seg[1], segs[:, 1]) - np.maximum(seg[0], segs[:, 0]), 0, None)
    union = (seg[1] - seg[0]) + (segs[:, 1] - segs[:, 0]) - inter
    return inter / np.maximum(union, 1e-12)


def interpolated_ap(tp: np.ndarray, n_gt: int) -> float:
    """ActivityNet AP from a TP flag per prediction (sorted by score)."""
    if n_gt == 0:
        return 0.0
    tp = tp.astype(np.float64)
    rec = np.cumsum(tp) / n_gt
    prec = np.cumsum(tp) / np.arange(1, len(tp) + 1)
    mprec = np.concatenate([[0.0], prec, [0.0]])
    mrec = np.concatenate([[0.0], rec, [1.0]])
    mprec = np.maximum.accumulate(mprec[::-1])[::-1]
    idx = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx]))


def average_precision(preds: list[tuple[str, float, float, float]], gts: list[tuple[str, float, float]],
                      thresholds: np.ndarray = TIOU) -> np.ndarray:
    """AP of one class at each tIoU. preds: (video, start, end, score); gts: (video, start, end)."""
    ap = np.zeros(len(thresholds))
    if not gts:
        return ap
    order = sorted(range(len(preds)), key=lambda i: -preds[i][3])
    by_video: dict[str, list[int]] = {}
    for j, g in enumerate(gts):
        by_video.setdefault(g[0], []).append(j)
    gt_segs = np.array([[g[1], g[2]] for g in gts])
    for k, thr in enumerate(thresholds):
        used = np.zeros(len(gts), bool)
        tp = np.zeros(len(preds))
        for rank, i in enumerate(order):
            cand = by_video.get(preds[i][0], [])
            if not cand:
                continue
            ious = tiou(np.array(preds[i][1:3]), gt_segs[cand])
            for j in np.argsort(-ious, kind="stable"):
                if ious[j] < thr:
                    break
                if not used[cand[j]]:
                    used[cand[j]] = True
                    tp[rank] = 1
                    break
        ap[k] = interpolated_ap(tp, len(gts))
    return ap


def _distinct(gts: list[tuple[str, float, float]], tol: float = 1e-3) -> list[tuple[str, float, float]]:
    """The GT events of one class without repeats (the same video, start and end within `tol`
    seconds), as the official evaluation removes them (UnAV's `remove_duplicate_annotations`)."""
    out: list[tuple[str, float, float]] = []
    for g in gts:
        if not any(o[0] == g[0] and abs(o[1] - g[1]) <= tol and abs(o[2] - g[2]) <= tol for o in out):
            out.append(g)
    return out


def unav_map(preds: dict[str, list[tuple[int, float, float, float]]], gts: dict[str, list[tuple[int, float, float]]],
             num_classes: int) -> dict[str, float]:
    """mAP (percent) at each tIoU and their mean, over classes with GT events."""
    unknown = sorted(set(preds) - set(gts))
    if unknown:
        raise ValueError(f"predictions for {len(unknown)} videos without ground truth, e.g. {unknown[:3]}")
    bad = sorted({c for evs in list(preds.values()) + list(gts.values()) for c, *_ in evs if not 0 <= c < num_classes})
    if bad:
        raise ValueError(f"class ids {bad[:5]} outside 0..{num_classes - 1}")
    aps = []
    for c in range(num_classes):
        g = _distinct([(v, s, e) for v, evs in gts.items() for (cc, s, e) in evs if cc == c])
        if not g:
            continue
        pr = [(v, s, e, sc) for v, evs in preds.items() for (cc, s, e, sc) in evs if cc == c]
        aps.append(average_precision(pr, g))
    m = np.mean(aps, axis=0) if aps else np.zeros(len(TIOU))
    out = {f"map@{t:.1f}": 100 * float(x) for t, x in zip(TIOU, m)}
    out["map_mean"] = 100 * float(m.mean())
    return out


def video_map(p: np.ndarray, y: np.ndarray) -> float:
    """Video-level classification mAP (percent). p, y: (N, C) scores and 0/1 labels.

    Per class with at least one positive video: videos by descending p (ties in video
    order), AP = mean over the positives of the precision at their rank (non-interpolated).
    """
    aps = []
    for c in np.flatnonzero(y.sum(0) > 0):
        order = np.argsort(-p[:, c], kind="stable")
        hits = y[order, c] > 0
        precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        aps.append(precision[hits].mean())
    return 100 * float(np.mean(aps)) if aps else 0.0


def gt_bins(events: list[tuple[int, float, float]], duration: float, num_classes: int) -> np.ndarray:
    """(C, n_bins) one-second bins covered at least half by a GT event of the class."""
    n = max(1, int(np.ceil(duration - 1e-9)))
    cover = np.zeros((num_classes, n))
    lo = np.arange(n, dtype=np.float64)
    for c, s, e in events:
        cover[c] = np.maximum(cover[c], np.clip(np.minimum(e, lo + 1) - np.maximum(s, lo), 0, None))
    return (cover >= 0.5).astype(np.int8)


def pred_bins(pos_rows: np.ndarray, n_bins: int, grid: TimeGrid) -> np.ndarray:
    """(C, n_bins) one-second bins where at least half of the rows (by their centre on `grid`)
    are positive. pos_rows: (T, C)."""
    T, C = pos_rows.shape
    bins = np.floor(grid.centres(T)).astype(int)
    out = np.zeros((C, n_bins), np.int8)
    for b in range(n_bins):
        rows = pos_rows[bins == b]
        if len(rows):
            out[:, b] = (2 * rows.sum(0) >= len(rows)).astype(np.int8)
    return out


def av_bin_f1(pred: list[np.ndarray], gt: list[np.ndarray]) -> dict[str, float]:
    """Segment- and event-level AV F1 (percent) over videos of different bin counts."""
    seg, evt = [], []
    for p, g in zip(pred, gt):
        seg.append(video_f1(*segment_counts(p[None], g[None]))[0])
        evt.append(video_f1(*event_counts(p[None], g[None]))[0])
    return {"seg_av": 100 * float(np.mean(seg)), "evt_av": 100 * float(np.mean(evt))}
