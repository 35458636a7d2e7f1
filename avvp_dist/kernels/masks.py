"""Pseudo masks from teacher probabilities: thresholds or top-k, label gating, reliable
negatives and the CMA pair mask, in one pass over (B, T, 2, C)."""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from avvp_dist.kernels.backend import use_triton


class PseudoMasks(NamedTuple):
    pos: torch.Tensor  # (B, T, 2, C) bool: M_m(t, c), pseudo positives
    reliable: torch.Tensor  # (B, T, 2, C) bool: positions the pseudo loss uses (positives + reliable negatives)
    pairs: torch.Tensor  # (B, T, C) bool: CMA pairs, positive in both modalities


def topk_counts(valid: torch.Tensor, rho: float) -> torch.Tensor:
    """k = ceil(rho * T_valid) per video, computed on the host in float64. valid: (B, T) -> (B,) int32."""
    n = valid.sum(1).tolist()
    return torch.tensor([min(t, math.ceil(rho * t)) for t in n], dtype=torch.int32)


def pseudo_masks(P: torch.Tensor, y: torch.Tensor, valid: torch.Tensor, mode: str = "adaptive",
                 gamma: float = 1.0, tau_min: float = 0.5, k: torch.Tensor | None = None,
                 tau_low: float = 0.0, backend: str = "auto", absent_negatives: bool = True) -> PseudoMasks:
    """Masks from teacher segment probabilities.

    P: (B, T, 2, C) teacher probabilities (audio, visual); y: (B, C) video labels in {0, 1};
    valid: (B, T) bool. `mode="adaptive"`: positive where P >= max(tau_min, gamma * mean over
    valid t of P). `mode="topk"`: the `k[b]` (B,) highest valid segments of each class,
    ties to the lower index. Positives are gated by y and validity. Reliable negatives:
    every valid segment of a class with y = 0 (when `absent_negatives`), plus (when
    `tau_low > 0`) valid segments of a labelled class with P < tau_low that are not positive.
    With neither, the reliable positions are the positives alone.
    """
    if P.dim() != 4 or P.shape[2] != 2:
        raise ValueError(f"P must be (B, T, 2, C), got {tuple(P.shape)}")
    if mode not in ("adaptive", "topk"):
        raise ValueError(f"mode must be adaptive or topk, got {mode!r}")
    if mode == "topk" and k is None:
        raise ValueError("mode='topk' needs k (B,), see topk_counts")
    if use_triton(P, backend):
        from avvp_dist.kernels.triton_masks import pseudo_masks_triton

        return PseudoMasks(*pseudo_masks_triton(P, y, valid, mode, gamma, tau_min, k, tau_low, absent_negatives))
    return _pseudo_masks_torch(P, y, valid, mode, gamma, tau_min, k, tau_low, absent_negatives)


def _order_keys(cols: torch.Tensor) -> torch.Tensor | None:
    """Unique int64 keys that order float32 values (..., T) like a descending stable sort:
    larger value first, ties to the lower index. None for other dtypes."""
    if cols.dtype != torch.float32 or cols.shape[-1] >= 1 << 16:
        return None
    bits = (cols + 0.0).view(torch.int32).to(torch.int64)  # + 0.0: -0.0 becomes 0.0, a tie
    bits = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits)  # negative floats: reverse their order
    index = torch.arange(cols.shape[-1], device=cols.device)
    return bits * (1 << 16) + ((1 << 16) - 1 - index)


def _topk_select(cols: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """cols: (L, 2, T) with -inf at invalid segments; k: (L,) -> (L, 2, T) bool, True at
    each row's k highest segments (ties to the lower index)."""
    kmax = int(k.max())
    keys = _order_keys(cols)
    if keys is not None:  # unique keys: a top-k selection, no full sort
        top = keys.topk(kmax, dim=-1, sorted=True).indices  # (L, 2, kmax), best first
    else:
        top = cols.sort(dim=-1, descending=True, stable=True).indices[..., :kmax]
    keep = torch.arange(kmax, device=cols.device) < k.view(-1, 1, 1)  # (L, 1, kmax) -> broadcast
    return torch.zeros(cols.shape, dtype=torch.bool, device=cols.device).scatter_(-1, top, keep.expand_as(top))


def _pseudo_masks_torch(P, y, valid, mode, gamma, tau_min, k, tau_low, absent_negatives=True) -> PseudoMasks:
    B, T, _, C = P.shape
    v = valid[:, :, None, None]
    labelled = y.bool()[:, None, None, :]
    if mode == "adaptive":
        n = valid.sum(1).clamp_min(1).to(P.dtype)
        tau = torch.clamp(gamma * (P * v).sum(1) / n[:, None, None], min=tau_min)  # (B, 2, C)
        pos = (P >= tau[:, None]) & v & labelled
        pairs = pos[:, :, 0] & pos[:, :, 1]
    else:  # rank only the labelled (video, class) columns: the others have no positives
        pos = torch.zeros_like(P, dtype=torch.bool)
        pairs = torch.zeros(B, T, C, dtype=torch.bool, device=P.device)
        vids, cls = y.bool().nonzero(as_tuple=True)
        if len(vids):
            cols = P[vids, :, :, cls].transpose(1, 2).contiguous()  # (L, 2, T)
            cols.masked_fill_(~valid[vids][:, None, :], float("-inf"))
            # k <= valid segments, so the selection holds only valid segments
            sel = _topk_select(cols, k.to(P.device)[vids])
            pos[vids, :, :, cls] = sel.transpose(1, 2)
            pairs[vids, :, cls] = sel[:, 0] & sel[:, 1]
    neg = (valid[:, :, None] & ~y.bool()[:, None, :])[:, :, None, :]  # (B, T, 1, C): every segment of an absent class
    if not absent_negatives:
        neg = torch.zeros_like(neg)
    if tau_low > 0:
        neg = neg | (v & labelled & (P < tau_low) & ~pos)
    return PseudoMasks(pos, pos | neg, pairs)
