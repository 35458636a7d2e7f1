"""Pseudo masks from external segment-level labels (VALOR's CLIP / CLAP pseudo-labels and the
like), alone or joined with the EMA teacher's (`method.pseudo.source`)."""
from __future__ import annotations

import torch

from avvp_dist.kernels import PseudoMasks


def external_masks(labels: torch.Tensor, y: torch.Tensor, valid: torch.Tensor) -> PseudoMasks:
    """Masks from external labels, as VALOR trains on them: a BCE at every valid position.

    labels: (B, T, 2, C) in [0, 1], audio at [:, :, 0], visual at [:, :, 1] (0 on padding);
    y: (B, C) video labels; valid: (B, T) bool. Positive where the label is >= 0.5 and the
    class is labelled; every valid position is reliable (a label of 0 is a negative); CMA
    pairs where both modalities are positive.
    """
    v = valid[:, :, None, None]
    pos = (labels >= 0.5) & (y[:, None, None, :] > 0) & v
    reliable = v.expand(pos.shape)
    return PseudoMasks(pos, reliable, pos[:, :, 0] & pos[:, :, 1])


def union_masks(teacher: PseudoMasks, external: PseudoMasks) -> PseudoMasks:
    """`source=both`: positive where either source is; reliable where the teacher's mask is
    reliable or the external label is positive (an external negative alone does not make a
    position reliable); pairs from the joined positives. All (B, T, 2, C) / (B, T, C) bool."""
    pos = teacher.pos | external.pos
    return PseudoMasks(pos, teacher.reliable | external.pos, pos[:, :, 0] & pos[:, :, 1])
