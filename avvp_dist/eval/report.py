"""Metrics of a split from gathered predictions (LLP's 10 numbers or UnAV-100's mAP, per class),
the per-class threshold calibration, and what each video's timeline plot shows."""
from __future__ import annotations

import numpy as np

from avvp_dist.data.annotations import Event, segment_labels
from avvp_dist.data.timegrid import TimeGrid
from avvp_dist.eval.llp_metrics import llp_metrics, segment_counts
from avvp_dist.eval.protocol import Protocol, binarize, calibrate_thresholds
from avvp_dist.eval.detection import detections
from avvp_dist.eval.unav_metrics import av_bin_f1, gt_bins, pred_bins, unav_map, video_map


def _events(meta: dict) -> list[Event]:
    if "events" not in meta:
        raise ValueError(f"video {meta.get('vid')!r} has no dense annotation: evaluate a val or test split")
    return [Event(*e) for e in meta["events"]]


def llp_ground_truth(pred: dict, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(N, C, T) audio and visual GT from the shard meta, `GT[c, onset:offset] = 1`."""
    T = pred["P"][0].shape[0]
    gt = np.stack([segment_labels(_events(m), classes, T) for m in pred["meta"]])
    return gt[:, 0], gt[:, 1]


def llp_report(pred: dict, classes: list[str], proto: Protocol, class_thresholds=None) -> dict:
    """The 10 LLP numbers and per-class segment-level F1 (counts pooled over videos)."""
    P = np.stack(pred["P"])
    pa, pv = binarize(P, pred["p"], pred["p_a"], pred["p_v"], proto, class_thresholds)
    ga, gv = llp_ground_truth(pred, classes)
    metrics = llp_metrics(pa, pv, ga, gv)
    per_class = {}
    for name, p, g in (("a", pa, ga), ("v", pv, gv), ("av", pa * pv, ga * gv)):
        tp, fp, fn = (x.sum(0) for x in segment_counts(p, g))
        f = np.where(tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), np.nan)
        per_class[name] = {c: None if np.isnan(v) else 100 * float(v) for c, v in zip(classes, f)}
    return {"metrics": metrics, "per_class": per_class, "binary": (pa, pv, ga, gv)}


def llp_calibration(val: dict, classes: list[str], proto: Protocol) -> np.ndarray:
    """Per-class frame thresholds (C,) fitted on a validation split's gathered predictions."""
    ga, gv = llp_ground_truth(val, classes)
    return calibrate_thresholds(np.stack(val["P"]), val["p"], val["p_a"], val["p_v"], ga, gv, proto)


def llp_timeline(rep: dict, pred: dict, i: int, classes: list[str]) -> tuple[np.ndarray, ...]:
    """(gt_a, gt_v, pred_a, pred_v), each (C, T) binary, of video i of an LLP report."""
    pa, pv, ga, gv = (x[i] for x in rep["binary"])
    return ga, gv, pa, pv


def unav_timeline(rep: dict, pred: dict, i: int, classes: list[str], *, grid: TimeGrid) -> tuple[np.ndarray, ...]:
    """The same for UnAV-100 (rows on `grid`): the best detection of each class (of those
    `unav_report` scored), in both modalities, since the events are audio-visual; a row is
    shown where its centre lies in the detection or the event."""
    T = len(pred["P"][i])
    shown = np.zeros((len(classes), T), np.int8)
    for c, s, e, _ in rep["events"][pred["keys"][i]]:
        if not shown[c].any():  # detections come best first
            shown[c, grid.rows_within(s, e, T)] = 1
    gt = np.zeros((len(classes), T), np.int8)
    index = {c: k for k, c in enumerate(classes)}
    for e in _events(pred["meta"][i]):
        gt[index[e.label], grid.rows_within(e.onset, e.offset, T)] = 1
    return gt, gt, shown, shown


def unav_report(pred: dict, classes: list[str], proto: Protocol, class_thresholds=None, *, grid: TimeGrid) -> dict:
    """Detection mAP at tIoU 0.1..0.9 and their mean (`proto.detection`'s detections, rows to
    seconds on `grid`, clamped to each video's duration), video-level classification mAP of
    p, and AV segment and event F1 on one-second bins (a row is positive where P_a and P_v
    reach `proto.frame_threshold` and p_c reaches `proto.video_threshold`)."""
    if class_thresholds is not None:
        raise ValueError("per-class threshold calibration is an LLP protocol; UnAV-100 has none")
    index = {c: i for i, c in enumerate(classes)}
    preds, gts, pb, gb = {}, {}, [], []
    labels = np.zeros((len(pred["keys"]), len(classes)), np.int8)
    for n, (key, P, p, meta) in enumerate(zip(pred["keys"], pred["P"], pred["p"], pred["meta"])):
        evs = [(index[e.label], e.onset, e.offset) for e in _events(meta)]
        gts[key] = evs
        labels[n, [c for c, *_ in evs]] = 1
        preds[key] = detections(P, p, proto.detection, grid, meta["duration"])
        g = gt_bins(evs, meta["duration"], len(classes))
        pos = (P[:, 0] >= proto.frame_threshold) & (P[:, 1] >= proto.frame_threshold) & (p >= proto.video_threshold)
        pb.append(pred_bins(pos, g.shape[1], grid))
        gb.append(g)
    metrics = {**unav_map(preds, gts, len(classes)), "video_map": video_map(np.asarray(pred["p"]), labels),
               **av_bin_f1(pb, gb)}
    return {"metrics": metrics, "events": preds}
