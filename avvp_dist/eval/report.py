"""Metrics of a split from gathered predictions (LLP's 10 numbers or UnAV-100's mAP, per class),
the per-class threshold calibration, and what each video's timeline plot shows."""
from __future__ import annotations

import numpy as np

from avvp_dist.data.annotations import Event, segment_labels
from avvp_dist.eval.llp_metrics import llp_metrics, segment_counts
from avvp_dist.eval.protocol import Protocol, binarize, calibrate_thresholds
from avvp_dist.eval.unav_metrics import HOP_S, av_bin_f1, av_events, gt_bins, pred_bins, unav_map


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


def unav_timeline(rep: dict, pred: dict, i: int, classes: list[str]) -> tuple[np.ndarray, ...]:
    """The same for UnAV-100 (rows of 0.32 s); a row is shown positive in both modalities."""
    P, p = pred["P"][i], pred["p"][i]
    pos = ((P >= 0.5) & (p >= 0.5)[None, None, :]).transpose(1, 2, 0)  # (2, C, T)
    gt = segment_labels([Event(*e) for e in pred["meta"][i]["events"]], classes, len(P), HOP_S)
    return gt[0], gt[1], pos[0], pos[1]


def unav_report(pred: dict, classes: list[str], proto: Protocol, class_thresholds=None) -> dict:
    """AV mAP at tIoU 0.1..0.9 and their mean; AV segment and event F1 on one-second bins."""
    if class_thresholds is not None:
        raise ValueError("per-class threshold calibration is an LLP protocol; UnAV-100 has none")
    index = {c: i for i, c in enumerate(classes)}
    preds, gts, pb, gb = {}, {}, [], []
    for key, P, p, meta in zip(pred["keys"], pred["P"], pred["p"], pred["meta"]):
        evs = [(index[e.label], e.onset, e.offset) for e in _events(meta)]
        gts[key] = evs
        preds[key] = av_events(P, p, len(P), proto.frame_threshold, proto.video_threshold)
        g = gt_bins(evs, meta["duration"], len(classes))
        pos = (P[:, 0] >= proto.frame_threshold) & (P[:, 1] >= proto.frame_threshold) & (p >= proto.video_threshold)
        pb.append(pred_bins(pos, g.shape[1], HOP_S))
        gb.append(g)
    metrics = {**unav_map(preds, gts, len(classes)), **av_bin_f1(pb, gb)}
    return {"metrics": metrics, "events": preds}
