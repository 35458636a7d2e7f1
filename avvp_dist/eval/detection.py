"""Scored audio-visual event detections of one video, as UnAV-100's own evaluation consumes them.

UnAV-100 (Geng et al., CVPR 2023) evaluates with ActionFormer's ActivityNet-style
detection mAP: class-wise soft-NMS, at most 100 detections per video, a minimum score,
tIoU 0.1..0.9. A weakly supervised model gives segment probabilities, not boxes, so the
candidates are made the way weakly supervised temporal localisation makes them (BaS-Net,
CoLA): for each of the video's top-k classes by video-level score, the runs of the
audio-visual activation P_a * P_v above several fractions of that video and class's
maximum activation. No absolute gate: a weak model with a good ranking still gets
detections, and mAP measures that ranking. Pure numpy.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from avvp_dist.eval.runs import runs


@dataclass(frozen=True)
class DetectionConfig:
    """How detections are made from a video's outputs (docs/evaluation.md)."""

    top_k_classes: int = 3  # candidate classes per video by video-level p; never fewer than 1
    # activation thresholds as fractions of the video and class's maximum AV activation
    fractions: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    # contrast: (inner - outer) activation x p_c; mean: inner x p_c, which ranks short peaks first
    # and scored far lower on the tuning seeds (docs/evaluation.md)
    score: Literal["mean", "contrast"] = "contrast"
    nms_sigma: float = 0.4  # Gaussian soft-NMS per class (UnAV's ActionFormer config)
    max_per_video: int = 100  # detections kept per video, by score
    min_score: float = 0.001  # detections below are dropped (also after soft-NMS decay)

    def __post_init__(self):
        if self.top_k_classes < 1:
            raise ValueError(f"top_k_classes must be at least 1, got {self.top_k_classes}")
        if not self.fractions or not all(0 < f <= 1 for f in self.fractions):
            raise ValueError(f"fractions must lie in (0, 1], got {self.fractions}")
        if self.nms_sigma <= 0 or self.max_per_video < 1 or self.min_score < 0:
            raise ValueError("nms_sigma must be > 0, max_per_video >= 1, min_score >= 0")


def _run_score(act: np.ndarray, a: int, b: int, how: str) -> float:
    """Mean activation of rows [a, b), minus the mean of the rows around it for `contrast`
    (a margin of a quarter of the run's length on each side, at least one row)."""
    inner = float(act[a:b].mean())
    if how == "mean":
        return inner
    m = max(1, (b - a) // 4)
    outer = np.concatenate([act[max(0, a - m):a], act[b:b + m]])
    return inner - (float(outer.mean()) if len(outer) else 0.0)


def soft_nms(segs: np.ndarray, scores: np.ndarray, sigma: float, min_score: float) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian soft-NMS of one class: repeatedly keep the best, decay the others by
    exp(-tIoU^2 / sigma). segs: (N, 2) [start, end); returns the kept segments and scores,
    best first, those decayed below `min_score` dropped."""
    segs, scores = segs.astype(np.float64).copy(), scores.astype(np.float64).copy()
    keep_s, keep_v = [], []
    while len(scores):
        i = int(np.argmax(scores))
        if scores[i] < min_score:
            break
        best = segs[i]
        keep_s.append(best)
        keep_v.append(scores[i])
        segs, scores = np.delete(segs, i, 0), np.delete(scores, i)
        inter = np.clip(np.minimum(best[1], segs[:, 1]) - np.maximum(best[0], segs[:, 0]), 0, None)
        union = (best[1] - best[0]) + (segs[:, 1] - segs[:, 0]) - inter
        scores = scores * np.exp(-((inter / np.maximum(union, 1e-12)) ** 2) / sigma)
    return np.array(keep_s).reshape(-1, 2), np.array(keep_v)


def detections(P: np.ndarray, p: np.ndarray, cfg: DetectionConfig, seconds_per_row: float
               ) -> list[tuple[int, float, float, float]]:
    """(class, start_s, end_s, score) of one video, best first.

    P: (T, 2, C) segment probabilities (audio, visual); p: (C,) video-level probabilities.
    Rows [a, b) become [a * seconds_per_row, b * seconds_per_row) seconds.
    """
    T = P.shape[0]
    if T == 0:
        return []
    act = P[:, 0] * P[:, 1]  # (T, C) audio-visual activation
    k = min(max(1, cfg.top_k_classes), len(p))
    classes = np.argsort(-p, kind="stable")[:k]
    out = []
    for c in classes.tolist():
        a_c = act[:, c]
        peak = float(a_c.max())
        if peak <= 0:
            continue
        found: dict[tuple[int, int], float] = {}
        for f in cfg.fractions:
            for a, b in runs(a_c >= f * peak):
                if (a, b) not in found:
                    found[(a, b)] = _run_score(a_c, a, b, cfg.score) * float(p[c])
        segs = np.array([[a * seconds_per_row, b * seconds_per_row] for a, b in found])
        kept, scores = soft_nms(segs, np.array(list(found.values())), cfg.nms_sigma, cfg.min_score)
        out += [(c, float(s), float(e), float(v)) for (s, e), v in zip(kept, scores)]
    out.sort(key=lambda d: -d[3])
    return out[:cfg.max_per_video]
