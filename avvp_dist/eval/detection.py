"""Scored audio-visual event detections of one video, as UnAV-100's own evaluation consumes them.

UnAV-100 (Geng et al., CVPR 2023) evaluates with ActionFormer's ActivityNet-style
detection mAP: class-wise soft-NMS, at most 100 detections per video, a minimum score,
tIoU 0.1..0.9. A weakly supervised model gives segment probabilities, not boxes, so the
candidates are made the way weakly supervised temporal localisation makes them (BaS-Net,
CoLA): for every class (as UnAV's official evaluation scores every class; or the video's
top-k classes by video-level score), the runs of the audio-visual activation P_a * P_v above
several fractions of that video and class's maximum activation. No absolute gate: a weak
model with a good ranking still gets detections, and mAP measures that ranking. Rows become
seconds on the dataset's time grid (`data.timegrid`; UnAV-100's official one), clamped to the
video's duration as the official post-processing does. Pure numpy.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Literal

import numpy as np

from avvp_dist.data.timegrid import TimeGrid
from avvp_dist.eval.runs import run_bounds


@dataclass(frozen=True)
class DetectionConfig:
    """How detections are made from a video's outputs (docs/evaluation.md)."""

    # candidate classes per video: 0 = every class (UnAV's official evaluation); k > 0: the
    # video's top k by video-level p (a video with more classes then misses some events)
    top_k_classes: int = 0
    # activation thresholds as fractions of the video and class's maximum AV activation
    fractions: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    # contrast: (inner - outer) activation x p_c; mean: inner x p_c, which ranks short peaks first
    # and scored far lower on the tuning seeds (docs/evaluation.md)
    score: Literal["mean", "contrast"] = "contrast"
    nms_sigma: float = 0.4  # Gaussian soft-NMS per class (UnAV's ActionFormer config)
    max_per_video: int = 100  # detections kept per video, by score
    min_score: float = 0.001  # detections below are dropped (also after soft-NMS decay)

    def __post_init__(self):
        if self.top_k_classes < 0:
            raise ValueError(f"top_k_classes must be 0 (every class) or positive, got {self.top_k_classes}")
        if not self.fractions or not all(0 < f <= 1 for f in self.fractions):
            raise ValueError(f"fractions must lie in (0, 1], got {self.fractions}")
        if self.nms_sigma <= 0 or self.max_per_video < 1 or self.min_score < 0:
            raise ValueError("nms_sigma must be > 0, max_per_video >= 1, min_score >= 0")


def _run_scores(act: np.ndarray, a: np.ndarray, b: np.ndarray, how: str) -> np.ndarray:
    """(R,) scores of the runs [a, b) of one class's activation (T,): their mean activation,
    minus the mean of the rows around each for `contrast` (a margin of a quarter of the run's
    length on each side, at least one row), from prefix sums."""
    c = np.concatenate([[0.0], np.cumsum(act, dtype=np.float64)])
    inner = (c[b] - c[a]) / (b - a)
    if how == "mean":
        return inner
    m = np.maximum(1, (b - a) // 4)
    lo, hi = np.maximum(0, a - m), np.minimum(len(act), b + m)
    n_out = (a - lo) + (hi - b)
    outer = np.where(n_out > 0, (c[a] - c[lo] + c[hi] - c[b]) / np.maximum(n_out, 1), 0.0)
    return inner - outer


def soft_nms(segs: np.ndarray, scores: np.ndarray, sigma: float, min_score: float) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian soft-NMS of one class: repeatedly keep the best, decay the others by
    exp(-tIoU^2 / sigma). segs: (N, 2) [start, end); returns the kept segments and scores,
    best first, stopping once the best left is below `min_score` (decays only lower scores)."""
    segs, scores = segs.astype(np.float64), scores.astype(np.float64).copy()
    alive, length = np.ones(len(scores), bool), segs[:, 1] - segs[:, 0]
    keep = []
    while alive.any():
        i = int(np.argmax(np.where(alive, scores, -np.inf)))
        if scores[i] < min_score:
            break
        keep.append((i, scores[i]))
        alive[i] = False
        inter = np.clip(np.minimum(segs[i, 1], segs[:, 1]) - np.maximum(segs[i, 0], segs[:, 0]), 0, None)
        union = length[i] + length - inter
        scores = np.where(alive, scores * np.exp(-((inter / np.maximum(union, 1e-12)) ** 2) / sigma), scores)
    return segs[[i for i, _ in keep]].reshape(-1, 2), np.array([v for _, v in keep])


def _candidates(a_c: np.ndarray, p_c: float, cfg: DetectionConfig, grid: TimeGrid, duration: float | None
                ) -> tuple[np.ndarray, np.ndarray]:
    """(segments (N, 2) in seconds, scores (N,)) of one class: the runs of `a_c` at or above
    each fraction of its peak, each once, scored x p_c; runs the clamp leaves empty dropped."""
    peak = float(a_c.max())
    if peak <= 0:
        return np.zeros((0, 2)), np.zeros(0)
    starts, ends = run_bounds(a_c[None, :] >= np.asarray(cfg.fractions)[:, None] * peak)  # every fraction at once
    real = ends > starts
    ab = np.unique(np.stack([starts[real], ends[real]], 1).astype(np.int64), axis=0)  # a run at several fractions: once
    if not len(ab):
        return np.zeros((0, 2)), np.zeros(0)
    scores = _run_scores(a_c, ab[:, 0], ab[:, 1], cfg.score) * p_c
    start, end = grid.segment(ab[:, 0].astype(np.float64), ab[:, 1].astype(np.float64), duration)
    segs = np.stack([start, end], 1)
    _, first = np.unique(segs, axis=0, return_index=True)  # runs the clamp made equal count once
    ok = np.zeros(len(segs), bool)
    ok[first] = True
    ok &= end > start
    return segs[ok], scores[ok]


def detections(P: np.ndarray, p: np.ndarray, cfg: DetectionConfig, grid: TimeGrid, duration: float | None = None
               ) -> list[tuple[int, float, float, float]]:
    """(class, start_s, end_s, score) of one video, best first.

    P: (T, 2, C) segment probabilities (audio, visual); p: (C,) video-level probabilities.
    Rows [a, b) become `grid.segment(a, b, duration)` seconds (clamped to [0, duration] when
    the duration is known; a run left empty by the clamp is dropped). Classes whose candidates
    cannot reach the `max_per_video` best kept so far are not searched: the same detections
    as searching every class, without the work.
    """
    T = P.shape[0]
    if T == 0:
        return []
    act = P[:, 0] * P[:, 1]  # (T, C) audio-visual activation
    k = len(p) if cfg.top_k_classes == 0 else min(cfg.top_k_classes, len(p))
    classes = np.argsort(-p, kind="stable")[:k]
    # a class's candidates score at most its peak activation x p_c (a run's mean is at most the
    # peak, and the contrast subtracts a non-negative mean): classes in that order, until none can
    # reach the `max_per_video` best kept so far (soft-NMS only lowers scores)
    bound = act[:, classes].max(0) * p[classes]
    out, top = [], []  # top: a min-heap of the best `max_per_video` kept scores
    for c, b in sorted(zip(classes.tolist(), bound.tolist()), key=lambda cb: -cb[1]):
        floor = max(cfg.min_score, top[0]) if len(top) == cfg.max_per_video else cfg.min_score
        if b < floor:
            break
        kept, scores = soft_nms(*_candidates(act[:, c], float(p[c]), cfg, grid, duration), cfg.nms_sigma, floor)
        for (s, e), v in zip(kept, scores):
            out.append((c, float(s), float(e), float(v)))
            (heapq.heappush if len(top) < cfg.max_per_video else heapq.heappushpop)(top, float(v))
    out.sort(key=lambda d: -d[3])
    return out[:cfg.max_per_video]
