"""What the teacher selects and how its probabilities look, as pure tensor functions: the
training log's telemetry (`step_telemetry`) and the selection's quality against segment-level
truth (`selection_counts`, `selection_scores`).

Every share is taken at the positions the teacher decides on: valid segments of the classes a
video is labelled with (absent classes are negatives by construction and would swamp it).
Modality index m: 0 audio, 1 visual (the second axis of P and of the masks).
"""
from __future__ import annotations

import torch

from avvp_dist.kernels import PseudoMasks

MODALITIES = ("audio", "visual")
SATURATED = (0.01, 0.99)


def labelled_positions(y: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """(B, T, 2, C) bool: valid segments of labelled classes, in both modalities. y: (B, C); valid: (B, T)."""
    at = valid.bool()[:, :, None] & y.bool()[:, None, :]  # (B, T, C)
    return at[:, :, None, :].expand(-1, -1, 2, -1)


def mask_shares(masks: PseudoMasks, y: torch.Tensor, valid: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per modality, the shares of the labelled positions that are pseudo-positive, reliable
    negative and ignored (they sum to 1), as `mask_<modality>_{pos,neg,ignored}`."""
    at = labelled_positions(y, valid)
    n = at.sum((0, 1, 3)).clamp_min(1).double()
    pos = (masks.pos & at).sum((0, 1, 3)) / n
    neg = (masks.reliable & ~masks.pos & at).sum((0, 1, 3)) / n
    out = {}
    for m, name in enumerate(MODALITIES):
        out[f"mask_{name}_pos"], out[f"mask_{name}_neg"] = pos[m], neg[m]
        out[f"mask_{name}_ignored"] = 1 - pos[m] - neg[m]
    return out


def probability_stats(P: torch.Tensor, y: torch.Tensor, valid: torch.Tensor, prefix: str) -> dict[str, torch.Tensor]:
    """Per modality at the labelled positions of P (B, T, 2, C): the shares above 0.99 and
    below 0.01 (`<prefix>_<modality>_high`, `_low`) and the spread within a video (the standard
    deviation over its valid segments, averaged over its labelled classes: `_spread`)."""
    at = labelled_positions(y, valid)
    P = P.detach().float()
    n = at.sum((0, 1, 3)).clamp_min(1).double()
    high = ((P > SATURATED[1]) & at).sum((0, 1, 3)) / n
    low = ((P < SATURATED[0]) & at).sum((0, 1, 3)) / n
    t = valid.sum(1).clamp_min(1).to(P.dtype)[:, None, None]  # (B, 1, 1)
    v = valid.to(P.dtype)[:, :, None, None]
    mean = (P * v).sum(1) / t  # (B, 2, C)
    std = ((((P - mean[:, None]) ** 2) * v).sum(1) / t).sqrt()  # (B, 2, C)
    lab = y.to(P.dtype)[:, None, :]  # (B, 1, C)
    spread = (std * lab).sum((0, 2)) / lab.sum((0, 2)).clamp_min(1)  # (2,)
    out = {}
    for m, name in enumerate(MODALITIES):
        out[f"{prefix}_{name}_high"], out[f"{prefix}_{name}_low"] = high[m], low[m]
        out[f"{prefix}_{name}_spread"] = spread[m].double()
    return out


def step_telemetry(P_student: torch.Tensor, P_teacher: torch.Tensor | None, masks: PseudoMasks | None,
                   y: torch.Tensor, valid: torch.Tensor) -> dict[str, torch.Tensor]:
    """One micro-step's telemetry on this rank: the masks' shares, saturation and spread of the
    student's and the teacher's probabilities, and the teacher-student gap (mean |P_teacher -
    P_student| at the labelled positions, `teacher_gap`). Detached; for the log only."""
    out = probability_stats(P_student, y, valid, "student")
    if P_teacher is not None:
        out.update(probability_stats(P_teacher, y, valid, "teacher"))
        at = labelled_positions(y, valid)
        gap = (P_teacher.detach().float() - P_student.detach().float()).abs()
        out["teacher_gap"] = (gap * at).sum().double() / at.sum().clamp_min(1)
    if masks is not None:
        out.update(mask_shares(masks, y, valid))
    return out


def selection_counts(pos: torch.Tensor, pairs: torch.Tensor, truth: torch.Tensor, y: torch.Tensor,
                     valid: torch.Tensor) -> dict[str, torch.Tensor]:
    """Counts per modality and class (2, C) of selected positives against segment truth, at the
    labelled positions: `selected`, `correct` (selected and true), `true` (true positions),
    `labelled` (all of them); and per class (C,) of the CMA pairs: `pairs`, `pairs_correct`
    (true in both modalities), `pairs_true` (labelled positions true in both).

    pos: (B, T, 2, C) bool; pairs: (B, T, C) bool; truth: (B, T, 2, C) bool; y: (B, C); valid: (B, T).
    """
    at = labelled_positions(y, valid)
    pos, truth = pos.bool() & at, truth.bool() & at
    pairs = pairs.bool() & at[:, :, 0]
    both = truth.all(2)
    return {"selected": pos.sum((0, 1)), "correct": (pos & truth).sum((0, 1)), "true": truth.sum((0, 1)),
            "labelled": at.sum((0, 1)), "pairs": pairs.sum((0, 1)), "pairs_correct": (pairs & both).sum((0, 1)),
            "pairs_true": both.sum((0, 1))}


def _ratio(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a) / float(b) if float(b) > 0 else float("nan")


def selection_scores(counts: dict[str, torch.Tensor]) -> dict[str, float]:
    """Micro-averaged scores of `selection_counts`: per modality precision and recall of the
    pseudo positives and their F1, and the precision of the CMA pairs (NaN where nothing was
    selected); beside them the base rates (`<m>_base_rate`, `pair_base_rate`: the share of the
    labelled positions that are true, which is what selecting all of them would score)."""
    out = {}
    for m, name in enumerate(MODALITIES):
        sel, ok, true = counts["selected"][m].sum(), counts["correct"][m].sum(), counts["true"][m].sum()
        p, r = _ratio(ok, sel), _ratio(ok, true)
        out[f"{name}_precision"], out[f"{name}_recall"] = p, r
        out[f"{name}_f1"] = 2 * p * r / (p + r) if p + r > 0 else float("nan")
        out[f"{name}_selected"] = float(sel)
        out[f"{name}_base_rate"] = _ratio(true, counts["labelled"][m].sum())
    out["pair_precision"] = _ratio(counts["pairs_correct"].sum(), counts["pairs"].sum())
    out["pairs"] = float(counts["pairs"].sum())
    out["pair_base_rate"] = _ratio(counts["pairs_true"].sum(), counts["labelled"][0].sum())
    return out
