"""Loss terms as pure tensor functions: weak (HAN), pseudo BCE, CMA agreement and InfoNCE.

The pseudo and CMA functions return *sums* over positions; the caller divides by the
global count of positions (normalisation contract, see `objective.py`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

EPS = 1e-7  # HAN clamps probabilities to [1e-7, 1 - 1e-7] before BCE


def _bce(p: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    return F.binary_cross_entropy(p.clamp(EPS, 1 - EPS), target, reduction=reduction)


def weak_loss(p: torch.Tensor, p_a: torch.Tensor, p_v: torch.Tensor, y: torch.Tensor,
              audio_smoothing: float = 1.0, visual_smoothing: float = 0.9,
              y_a: torch.Tensor | None = None, y_v: torch.Tensor | None = None,
              weights: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> torch.Tensor:
    """w_p BCE(p, y) + w_a BCE(p_a, s_a(y_a)) + w_v BCE(p_v, s_v(y_v)), s(y) = a y + (1 - a) / 2;
    each a mean over (B, C).

    All (B, C); y_a, y_v: per-modality labels (default y, as in HAN); weights: (w_p, w_a, w_v).
    """
    y_a = y if y_a is None else y_a
    y_v = y if y_v is None else y_v
    s_a = audio_smoothing * y_a + (1 - audio_smoothing) / 2
    s_v = visual_smoothing * y_v + (1 - visual_smoothing) / 2
    w_p, w_a, w_v = weights  # x 1.0 is exact: HAN's weights leave the loss bit for bit as it was
    return w_p * _bce(p, y) + w_a * _bce(p_a, s_a) + w_v * _bce(p_v, s_v)


@torch.no_grad()
def weak_references(y: torch.Tensor, audio_smoothing: float = 1.0, visual_smoothing: float = 0.9,
                    y_a: torch.Tensor | None = None, y_v: torch.Tensor | None = None,
                    weights: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> tuple[torch.Tensor, torch.Tensor]:
    """Two yardsticks for `weak_loss` on a batch, as scalars: its floor and its prior.

    floor: the loss of predictions equal to the targets, i.e. the targets' entropy (0 for
    hard labels, H(0.95) for each smoothed visual label). prior: the loss of predicting each
    class's frequency in the batch, as a model that learned the base rates and nothing else
    would. A weak loss that stays at the prior has learned nothing about the videos.
    """
    y_a = y if y_a is None else y_a
    y_v = y if y_v is None else y_v
    targets = (y, audio_smoothing * y_a + (1 - audio_smoothing) / 2, visual_smoothing * y_v + (1 - visual_smoothing) / 2)
    floor = sum(w * _bce(t, t) for w, t in zip(weights, targets))
    prior = sum(w * _bce(t.mean(0, keepdim=True).expand_as(t), t) for w, t in zip(weights, targets))
    return floor, prior


def pseudo_loss_sum(P: torch.Tensor, pos: torch.Tensor, reliable: torch.Tensor) -> torch.Tensor:
    """Sum of BCE(P, M) over reliable positions. P, pos, reliable: (B, T, 2, C)."""
    per = _bce(P, pos.to(P.dtype), reduction="none")
    return (per * reliable.to(P.dtype)).sum()


def agreement_sum(e_a: torch.Tensor, e_v: torch.Tensor) -> torch.Tensor:
    """Sum over pairs of 1 - cos(e_a, e_v); e_a, e_v: (N, E) unit vectors."""
    return (1.0 - (e_a * e_v).sum(-1)).sum()


def _nce_rows(anchor: torch.Tensor, keys: torch.Tensor, own: torch.Tensor, allowed: torch.Tensor,
              temperature: float) -> torch.Tensor:
    """-log softmax at each anchor's own key over the keys it may see. anchor (N, E), keys (G, E)."""
    logits = (anchor @ keys.T / temperature).masked_fill(~allowed, float("-inf"))
    return torch.logsumexp(logits, dim=1) - rearrange(logits.gather(1, rearrange(own, "n -> n 1")), "n 1 -> n")


def infonce_sum(e_a: torch.Tensor, e_v: torch.Tensor, cls: torch.Tensor, all_a: torch.Tensor,
                all_v: torch.Tensor, all_cls: torch.Tensor, all_valid: torch.Tensor, offset: int,
                temperature: float) -> torch.Tensor:
    """Symmetric cross-video InfoNCE, summed over the local pairs.

    e_a, e_v: (N, E) local pair embeddings, cls: (N,); all_*: (G, ...) the pairs of every
    rank (local ones at rows offset..offset+N). Each pair's positive is its own
    other-modality embedding; its negatives are the valid pairs of *other* classes;
    same-class pairs elsewhere are neither. Returns 0.5 * (sum a->v + sum v->a).
    """
    n = e_a.shape[0]
    own = torch.arange(n, device=e_a.device) + offset
    # (N, G): the keys each local anchor may see, valid pairs of other classes
    allowed = rearrange(all_valid, "g -> 1 g") & (rearrange(all_cls, "g -> 1 g") != rearrange(cls, "n -> n 1"))
    allowed[torch.arange(n, device=e_a.device), own] = True
    return 0.5 * (_nce_rows(e_a, all_v, own, allowed, temperature).sum()
                  + _nce_rows(e_v, all_a, own, allowed, temperature).sum())
