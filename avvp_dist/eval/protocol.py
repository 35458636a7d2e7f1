"""From model outputs to binary segment predictions: the published protocols as presets."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from avvp_dist.eval.detection import DetectionConfig


@dataclass(frozen=True)
class Protocol:
    """How model outputs become predictions: binary segments (LLP, and UnAV-100's F1 bins)
    at explicit thresholds, and scored detections (UnAV-100's mAP, no threshold)."""

    frame_threshold: float = 0.5  # segment probability threshold
    filter: Literal["video", "modality"] = "video"  # keep classes by p (HAN) or by p_a / p_v (MA, LSLD)
    video_threshold: float = 0.5
    detection: DetectionConfig = field(default_factory=DetectionConfig)


PROTOCOLS = {
    "han": Protocol(0.5, "video"),  # HAN (Tian et al. 2020), the protocol every AVVP paper reports
    "modality": Protocol(0.5, "modality"),  # MA, LSLD: filter audio by p_a and visual by p_v
    "low_threshold": Protocol(0.25, "video"),  # CMPAE, CoLeaF: frame threshold 0.25
}


def protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r}; known: {sorted(PROTOCOLS)}")
    return PROTOCOLS[name]


def binarize(P: np.ndarray, p: np.ndarray, p_a: np.ndarray, p_v: np.ndarray, proto: Protocol,
             class_thresholds: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Binary (N, C, T) audio and visual predictions.

    P: (N, T, 2, C) segment probabilities; p, p_a, p_v: (N, C). A segment is positive
    if its probability reaches the frame threshold (or the class's calibrated
    threshold, `class_thresholds` (C,)) and its class passes the video-level filter.
    """
    thr = proto.frame_threshold if class_thresholds is None else np.asarray(class_thresholds)[None, None, :]
    keep_a = (p if proto.filter == "video" else p_a) >= proto.video_threshold  # (N, C)
    keep_v = (p if proto.filter == "video" else p_v) >= proto.video_threshold
    pred_a = (P[:, :, 0] >= thr) & keep_a[:, None, :]
    pred_v = (P[:, :, 1] >= thr) & keep_v[:, None, :]
    return pred_a.transpose(0, 2, 1).astype(np.int8), pred_v.transpose(0, 2, 1).astype(np.int8)


def calibrate_thresholds(P, p, p_a, p_v, gt_a, gt_v, proto: Protocol,
                         grid: np.ndarray = np.round(np.arange(0.05, 0.96, 0.05), 2)) -> np.ndarray:
    """Per-class frame thresholds (C,) maximising the class's segment F1 (audio and visual
    counts pooled over the videos) on a validation split; apply them to test with `binarize`."""
    C = P.shape[-1]
    best, best_f = np.full(C, proto.frame_threshold), np.full(C, -1.0)
    for thr in grid:
        pa, pv = binarize(P, p, p_a, p_v, Protocol(float(thr), proto.filter, proto.video_threshold))
        tp = (pa * gt_a).sum((0, 2)) + (pv * gt_v).sum((0, 2))
        wrong = (pa != gt_a).sum((0, 2)) + (pv != gt_v).sum((0, 2))
        f = 2 * tp / np.maximum(2 * tp + wrong, 1)
        better = f > best_f
        best[better], best_f[better] = thr, f[better]
    return best
