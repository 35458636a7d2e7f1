"""Shared segment classifier and attentive MMIL pooling (softmax over time and modality)."""
from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from avvp_dist.model.output import ModelOutput


class MMILHead(nn.Module):
    """Segment probabilities P and their attentive pooling to video- and modality-level p."""

    def __init__(self, d_model: int, num_classes: int):
        super().__init__()
        self.classifier = nn.Linear(d_model, num_classes)
        self.time_attn = nn.Linear(d_model, num_classes)
        self.modality_attn = nn.Linear(d_model, num_classes)

    def forward(self, h: torch.Tensor, valid: torch.Tensor | None) -> ModelOutput:
        """h: (B, T, 2, d) audio/visual states; valid: (B, T) bool or None.

        Returns P (B, T, 2, C) segment probabilities, p (B, C) video-level, p_a, p_v
        (B, C) modality-level probabilities (no encoder states).
        """
        probs = torch.sigmoid(self.classifier(h))
        logits = self.time_attn(h)
        if valid is not None:
            logits = logits.masked_fill(~rearrange(valid, "b t -> b t 1 1"), float("-inf"))
        time_w = torch.softmax(logits, dim=1)  # over valid segments
        modality_w = torch.softmax(self.modality_attn(h), dim=2)
        temporal = time_w * probs  # (B, T, 2, C)
        return ModelOutput(P=probs, p=(temporal * modality_w).sum(dim=(1, 2)), p_a=temporal[:, :, 0].sum(1),
                           p_v=temporal[:, :, 1].sum(1))

    def modality_level(self, h: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
        """One modality's pooled probabilities, p_a or p_v of `forward`, from its states alone
        (pooling over time reads nothing of the other modality). h: (B, T, d) -> (B, C)."""
        logits = self.time_attn(h)
        if valid is not None:
            logits = logits.masked_fill(~rearrange(valid, "b t -> b t 1"), float("-inf"))
        return (torch.softmax(logits, dim=1) * torch.sigmoid(self.classifier(h))).sum(1)
