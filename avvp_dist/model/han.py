"""HAN: hybrid attention layers (self-attention within a modality + cross-modal attention).

As in the LLP paper (Tian et al., 2020), except that each layer is fed the previous
layer's output (the original code fed every layer the raw input; with one layer, as HAN
trains, the two agree). HAN applies one layer in both directions, (a, v) and (v, a), with
shared weights (`share_layers=True`); separate audio and visual layers are our variant.
"""
from __future__ import annotations

import torch
from torch import nn


class HybridAttentionLayer(nn.Module):
    """x <- norm(x + self_attn(x) + cross_attn(x, other)); x <- norm(x + ffn(x)). Without the
    cross-modal attention (`cross=False`, CoLeaF's second pass): x <- norm(x + self_attn(x))."""

    def __init__(self, d_model: int, num_heads: int, ffn_dim: int, dropout: float):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(d_model, ffn_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn_dim, d_model))
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.drop_self, self.drop_cross, self.drop_ffn = nn.Dropout(dropout), nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, other: torch.Tensor, pad: torch.Tensor | None, cross: bool = True) -> torch.Tensor:
        """x, other: (B, T, d); pad: (B, T) True on padded steps (ignored as keys). Returns (B, T, d)."""
        if cross:
            attended = self.cross_attn(x, other, other, key_padding_mask=pad, need_weights=False)[0]
            own = self.self_attn(x, x, x, key_padding_mask=pad, need_weights=False)[0]
            x = self.norm1(x + self.drop_cross(attended) + self.drop_self(own))
        else:
            own = self.self_attn(x, x, x, key_padding_mask=pad, need_weights=False)[0]
            x = self.norm1(x + self.drop_self(own))
        return self.norm2(x + self.drop_ffn(self.ffn(x)))


class HANEncoder(nn.Module):
    """L hybrid attention layers, each fed the previous layer's output; per layer either one
    layer serving both directions (HAN's, `share_layers`) or one per modality (ours)."""

    def __init__(self, d_model: int, num_layers: int, num_heads: int, ffn_dim: int, dropout: float,
                 share_layers: bool = False):
        super().__init__()
        make = lambda: HybridAttentionLayer(d_model, num_heads, ffn_dim, dropout)  # noqa: E731
        if share_layers:
            self.layers = nn.ModuleList(make() for _ in range(num_layers))
        else:
            self.audio_layers = nn.ModuleList(make() for _ in range(num_layers))
            self.visual_layers = nn.ModuleList(make() for _ in range(num_layers))
        self.share_layers = share_layers

    def _pairs(self) -> list[tuple[HybridAttentionLayer, HybridAttentionLayer]]:
        """(audio layer, visual layer) per depth: the same module twice when shared."""
        if self.share_layers:
            return [(layer, layer) for layer in self.layers]
        return list(zip(self.audio_layers, self.visual_layers))

    def forward(self, a: torch.Tensor, v: torch.Tensor, pad: torch.Tensor | None,
                cross: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """a, v: (B, T, d) -> (B, T, d) each; `cross=False`: no cross-modal attention."""
        for layer_a, layer_v in self._pairs():
            a, v = layer_a(a, v, pad, cross), layer_v(v, a, pad, cross)
        return a, v

    def forward_one(self, a: torch.Tensor, v: torch.Tensor, pad: torch.Tensor | None, modality: int) -> torch.Tensor:
        """Only `forward(a, v, pad)[modality]` (0 audio, 1 visual): the last layer runs for that
        modality alone, since nothing else reads the other one's last output. (B, T, d)."""
        *first, (last_a, last_v) = self._pairs()
        for layer_a, layer_v in first:
            a, v = layer_a(a, v, pad), layer_v(v, a, pad)
        return last_a(a, v, pad) if modality == 0 else last_v(v, a, pad)
