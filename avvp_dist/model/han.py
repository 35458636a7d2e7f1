"""HAN: hybrid attention layers (self-attention within a modality + cross-modal attention).

As in the LLP paper (Tian et al., 2020), except that each layer is fed the previous
layer's output (the original code fed every layer the raw input).
"""
from __future__ import annotations

import torch
from torch import nn


class HybridAttentionLayer(nn.Module):
    """x <- norm(x + self_attn(x) + cross_attn(x, other)); x <- norm(x + ffn(x))."""

    def __init__(self, d_model: int, num_heads: int, ffn_dim: int, dropout: float):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(d_model, ffn_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn_dim, d_model))
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.drop_self, self.drop_cross, self.drop_ffn = nn.Dropout(dropout), nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, other: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
        """x, other: (B, T, d); pad: (B, T) True on padded steps (ignored as keys). Returns (B, T, d)."""
        cross = self.cross_attn(x, other, other, key_padding_mask=pad, need_weights=False)[0]
        own = self.self_attn(x, x, x, key_padding_mask=pad, need_weights=False)[0]
        x = self.norm1(x + self.drop_cross(cross) + self.drop_self(own))
        return self.norm2(x + self.drop_ffn(self.ffn(x)))


class HANEncoder(nn.Module):
    """L hybrid attention layers per modality, each fed the previous layer's output."""

    def __init__(self, d_model: int, num_layers: int, num_heads: int, ffn_dim: int, dropout: float):
        super().__init__()
        make = lambda: HybridAttentionLayer(d_model, num_heads, ffn_dim, dropout)  # noqa: E731
        self.audio_layers = nn.ModuleList(make() for _ in range(num_layers))
        self.visual_layers = nn.ModuleList(make() for _ in range(num_layers))

    def forward(self, a: torch.Tensor, v: torch.Tensor, pad: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """a, v: (B, T, d) -> (B, T, d) each."""
        for layer_a, layer_v in zip(self.audio_layers, self.visual_layers):
            a, v = layer_a(a, v, pad), layer_v(v, a, pad)
        return a, v

    def forward_one(self, a: torch.Tensor, v: torch.Tensor, pad: torch.Tensor | None, modality: int) -> torch.Tensor:
        """Only `forward(a, v, pad)[modality]` (0 audio, 1 visual): the last layer runs for that
        modality alone, since nothing else reads the other one's last output. (B, T, d)."""
        for layer_a, layer_v in zip(self.audio_layers[:-1], self.visual_layers[:-1]):
            a, v = layer_a(a, v, pad), layer_v(v, a, pad)
        return self.audio_layers[-1](a, v, pad) if modality == 0 else self.visual_layers[-1](v, a, pad)
