"""CoLeaF's backbone (Sardari et al., ECCV 2024; nets/net_audiovisual.py, `MMIL_Net`), learned from its code.

- Encoder: HAN's shared hybrid-attention layers run twice, without and with cross-modal
  attention, mixed `mix : 1 - mix` (CoLeaF: 0.8 with, 0.2 without).
- Head: dropout on the visual states only; per segment and modality two logits, alpha
  (`fc_prob` on the states) and beta (`fc_prob_beta` on the states plus a v2a / a2v branch
  of their sum: audio gets `v2a`, visual `a2v`); attentive MMIL pooling of both over time
  (`fc_frame_att`, a softmax per modality, class and logit); evidential (Dirichlet)
  probabilities p = a_0 / (a_0 + a_1), a_k = exp(clamp(logit_k, -10, 10) / 0.8) + 1, for
  each segment (P) and pooled (p_a, p_v).
- Video-level p: the shared classifier branch on the encoder's inputs,
  sigmoid(classifier2(classifier1(z_a) + classifier1(z_v))) averaged over time.

Ours beyond the published forward, for variable-length videos (UnAV-100): padded segments
are masked out of the attention (as keys), the pooling softmax and the time average.
"""
from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from avvp_dist.model.han import HANEncoder
from avvp_dist.model.output import ModelOutput


def evidential_probability(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """(..., 2) positive / negative evidence logits -> (...) p = a_0 / (a_0 + a_1)."""
    alpha = torch.exp(torch.clamp(logits, -10, 10) / temperature) + 1.0
    return alpha[..., 0] / alpha.sum(-1)


class CoLeaFEncoder(nn.Module):
    """Two passes of HAN's shared layers, without and with cross-modal attention, mixed."""

    def __init__(self, d_model: int, num_layers: int, num_heads: int, ffn_dim: int, dropout: float, mix: float):
        super().__init__()
        self.han = HANEncoder(d_model, num_layers, num_heads, ffn_dim, dropout, share_layers=True)
        self.mix = mix

    def forward(self, a: torch.Tensor, v: torch.Tensor, pad: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """a, v: (B, T, d) -> (B, T, d) each."""
        a_self, v_self = self.han(a, v, pad, cross=False)  # CoLeaF runs this pass first
        a_cross, v_cross = self.han(a, v, pad, cross=True)
        return a_cross * self.mix + a_self * (1 - self.mix), v_cross * self.mix + v_self * (1 - self.mix)


def _branch(d_model: int) -> nn.Sequential:
    """CoLeaF's v2a / a2v: Linear, Dropout(0.2), LeakyReLU(0.2)."""
    return nn.Sequential(nn.Linear(d_model, d_model), nn.Dropout(0.2), nn.LeakyReLU(0.2))


class CoLeaFHead(nn.Module):
    """Alpha and beta frame logits, attentive MMIL pooling over both, evidential probabilities,
    and the shared classifier branch for the video-level p."""

    def __init__(self, d_model: int, num_classes: int, visual_dropout: float = 0.5, temperature: float = 0.8):
        super().__init__()
        self.num_classes, self.temperature = num_classes, temperature
        self.alpha = nn.Linear(d_model, num_classes)  # fc_prob
        self.beta = nn.Linear(d_model, num_classes)  # fc_prob_beta
        self.frame_att = nn.Linear(d_model, 2 * num_classes)  # fc_frame_att: (class, logit) pairs
        self.v2a, self.a2v = _branch(d_model), _branch(d_model)
        self.classifier1 = nn.Sequential(nn.Linear(d_model, d_model), nn.LeakyReLU(0.2))
        self.classifier2 = nn.Linear(d_model, num_classes)
        self.drop_visual = nn.Dropout(visual_dropout) if visual_dropout else nn.Identity()

    def video_level(self, z_a: torch.Tensor, z_v: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
        """The shared classifier branch: (B, T, d) encoder inputs -> (B, C), averaged over valid t."""
        seg = torch.sigmoid(self.classifier2(self.classifier1(z_a) + self.classifier1(z_v)))
        if valid is None:
            return seg.mean(1)
        w = rearrange(valid, "b t -> b t 1").to(seg.dtype)
        return (seg * w).sum(1) / w.sum(1).clamp_min(1)

    def forward(self, h_a: torch.Tensor, h_v: torch.Tensor, valid: torch.Tensor | None, z_a: torch.Tensor,
                z_v: torch.Tensor) -> ModelOutput:
        """h_a, h_v: (B, T, d) encoder states; valid: (B, T) bool or None; z_a, z_v: (B, T, d)
        the encoder's inputs. Returns P (B, T, 2, C), p, p_a, p_v (B, C)."""
        x_v = self.drop_visual(h_v)
        x = torch.stack([h_a, x_v], dim=2)  # (B, T, 2, d)
        both = h_a + x_v
        beta = torch.stack([self.beta(h_a + self.v2a(both)), self.beta(x_v + self.a2v(both))], dim=2)
        logits = torch.stack([self.alpha(x), beta], dim=-1)  # (B, T, 2, C, 2)
        att = rearrange(self.frame_att(x), "b t m (c k) -> b t m c k", k=2)
        if valid is not None:
            att = att.masked_fill(~rearrange(valid, "b t -> b t 1 1 1"), float("-inf"))
        pooled = (torch.softmax(att, dim=1) * logits).sum(1)  # (B, 2, C, 2)
        p_mod = evidential_probability(pooled, self.temperature)
        return ModelOutput(P=evidential_probability(logits, self.temperature), p=self.video_level(z_a, z_v, valid),
                           p_a=p_mod[:, 0], p_v=p_mod[:, 1])
