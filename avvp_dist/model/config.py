"""ModelConfig: which backbone (HAN's or CoLeaF's) and its sizes."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class ModelConfig:
    # han: HAN's encoder and MMIL head (Tian et al., ECCV 2020); coleaf: CoLeaF's (Sardari et al.,
    # ECCV 2024): ELU projections, two encoder passes mixed, alpha/beta logits with the v2a / a2v
    # branches, evidential probabilities, the shared classifier branch for p (model/coleaf.py)
    backbone: Literal["han", "coleaf"] = "han"
    d_model: int = 512  # HAN's width
    num_layers: int = 1  # HAN uses one hybrid attention layer
    num_heads: int = 1  # HAN: nhead=1
    ffn_dim: int = 512  # HAN: dim_feedforward=512
    dropout: float = 0.1  # HAN's dropout
    # HAN's encoder: one hybrid-attention layer serving both directions, (a, v) and (v, a);
    # false: separate audio and visual layers (ours, twice the encoder's parameters)
    share_layers: bool = False
    embed_dim: int = 128  # class-aware CMA embedding size; 0 disables the CMA head
    # standardise each input feature with the training split's per-dimension mean and std (from the
    # shard manifest), kept as buffers in the model and its checkpoints; off: the features as stored
    standardize: bool = False
    # coleaf only: the with-cross-attention pass's share (CoLeaF: 0.8), the dropout on the visual
    # states before the head (CoLeaF's cls_dropout 0.5), the evidential temperature (CoLeaF: 0.8)
    cross_attention_mix: float = 0.8
    visual_dropout: float = 0.5
    evidence_temperature: float = 0.8

    def __post_init__(self):
        if self.d_model <= 0 or self.num_layers <= 0 or self.num_heads <= 0 or self.ffn_dim <= 0:
            raise ValueError("d_model, num_layers, num_heads, ffn_dim must be positive")
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by num_heads {self.num_heads}")
        if not 0.0 <= self.dropout < 1.0 or self.embed_dim < 0:
            raise ValueError("dropout must lie in [0, 1) and embed_dim >= 0")
        if not 0.0 <= self.cross_attention_mix <= 1.0 or not 0.0 <= self.visual_dropout < 1.0:
            raise ValueError("cross_attention_mix must lie in [0, 1] and visual_dropout in [0, 1)")
        if self.evidence_temperature <= 0:
            raise ValueError("evidence_temperature must be > 0")
