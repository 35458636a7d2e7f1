"""Modality-aware label refinement by cross-video modality swap (after Wu & Yang, CVPR 2021).

A weak label says a class is in the video, not in which modality. The teacher scores
each video's visual track paired with the audio track of a partner video from the same
micro-batch that lacks the class (and, optionally, the reverse): a labelled class the
teacher no longer finds in the video's own visual (audio) track is taken as absent from
that modality. The refined per-modality labels replace y in the weak loss's modality
terms and gate the pseudo masks. Pure tensor functions; the teacher forward is the caller's.
"""
from __future__ import annotations

import torch

from avvp_dist.kernels import PseudoMasks


def partner_index(y: torch.Tensor) -> torch.Tensor | None:
    """For each video, the other video of the micro-batch sharing the fewest labels.

    y: (B, C) video labels. Ties go to the nearest following video (i + 1, i + 2, ...
    modulo B), so the choice depends only on the micro-batch. Returns (B,) long, or None
    when B < 2 (no partner to swap with).
    """
    B = y.shape[0]
    if B < 2:
        return None
    shared = y.float() @ y.float().T  # (B, B) labels in common
    idx = torch.arange(B, device=y.device)
    shift = (idx[None, :] - idx[:, None]) % B  # 1..B-1 off the diagonal
    score = shared * B + shift
    score.fill_diagonal_(float("inf"))
    return score.argmin(1)


def refine_labels(y: torch.Tensor, partner: torch.Tensor, p_own: torch.Tensor, p_swap: torch.Tensor,
                  ratio: tuple[float, float]) -> torch.Tensor:
    """Per-modality labels (B, 2, C) (audio, visual) from swapped teacher probabilities.

    y: (B, C) video labels; partner: (B,); p_own: (B, 2, C) the teacher's audio- and
    visual-level probabilities (p_a, p_v) on the video itself; p_swap: (B, 2, C) the same
    with the other modality's track taken from the partner (row m: video's own track m).
    A labelled class c is dropped from modality m when p_swap[m] < ratio[m] * p_own[m]:
    the teacher's belief in c there collapses once the other track no longer carries c.
    The threshold is relative so that it follows the teacher's overall confidence
    (an absolute one feeds on itself: dropped labels lower p_swap, which drops more).
    ratio[m] = 0 keeps modality m's labels. A class the partner is labelled with too is
    kept (the swap proves nothing then).
    """
    labelled = y.bool()
    testable = (labelled & ~labelled[partner])[:, None]  # (B, 1, C)
    r = torch.tensor(ratio, dtype=p_own.dtype, device=p_own.device)[None, :, None]  # (1, 2, 1)
    dropped = testable & (p_swap < r * p_own)
    return (labelled[:, None] & ~dropped).to(y.dtype)


def refine_masks(masks: PseudoMasks, y: torch.Tensor, y_mod: torch.Tensor, valid: torch.Tensor) -> PseudoMasks:
    """Pseudo masks gated by per-modality labels.

    masks: from the teacher with the video labels y (B, C); y_mod: (B, 2, C) refined
    labels; valid: (B, T). Where a labelled class was dropped from a modality, none of
    that modality's segments is positive and every valid one is a reliable negative;
    CMA pairs need the class in both modalities.
    """
    keep = y_mod.bool()[:, None]  # (B, 1, 2, C)
    dropped = (y.bool()[:, None, :] & ~y_mod.bool())[:, None] & valid[:, :, None, None]  # (B, T, 2, C)
    pos = masks.pos & keep
    return PseudoMasks(pos, masks.reliable | dropped, masks.pairs & keep[:, :, 0] & keep[:, :, 1])
