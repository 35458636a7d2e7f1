"""Class-aware embedding head for the cross-modal agreement (CMA) loss."""
from __future__ import annotations

import torch
from torch import nn


class ClassAwareEmbedding(nn.Module):
    """e^m(b, t, c) = normalise((W_m h^m(b, t)) * u_c), evaluated only at the pairs asked for."""

    def __init__(self, d_model: int, embed_dim: int, num_classes: int):
        super().__init__()
        self.proj_a = nn.Linear(d_model, embed_dim, bias=False)
        self.proj_v = nn.Linear(d_model, embed_dim, bias=False)
        self.class_vectors = nn.Parameter(torch.randn(num_classes, embed_dim) / embed_dim ** 0.5 + 1.0)

    def forward(self, h_a: torch.Tensor, h_v: torch.Tensor, cls: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h_a, h_v: (N, d) encoder states at the pairs; cls: (N,) class ids -> e_a, e_v (N, E), unit norm."""
        u = self.class_vectors[cls]
        e_a = nn.functional.normalize(self.proj_a(h_a) * u, dim=-1)
        e_v = nn.functional.normalize(self.proj_v(h_v) * u, dim=-1)
        return e_a, e_v
