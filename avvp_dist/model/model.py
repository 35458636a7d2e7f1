"""AVVPModel: per-modality projections -> encoder -> MMIL head (+ class-aware embeddings), HAN's or CoLeaF's."""
from __future__ import annotations

import torch
from torch import nn

from avvp_dist.model.coleaf import CoLeaFEncoder, CoLeaFHead
from avvp_dist.model.config import ModelConfig
from avvp_dist.model.han import HANEncoder
from avvp_dist.model.heads import ClassAwareEmbedding
from avvp_dist.model.mmil import MMILHead
from avvp_dist.model.output import ModelOutput


class Standardize(nn.Module):
    """(x - mean) / std per input dimension, with statistics fixed before training (buffers)."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("inv_std", torch.ones(dim))

    def set_stats(self, mean, std) -> None:
        mean, std = torch.as_tensor(mean, dtype=torch.float64), torch.as_tensor(std, dtype=torch.float64)
        if mean.shape != self.mean.shape or std.shape != self.mean.shape:
            raise ValueError(f"statistics of shape {tuple(mean.shape)}, {tuple(std.shape)} for a "
                             f"{self.mean.shape[0]}-dimensional feature")
        self.mean.copy_(mean)
        self.inv_std.copy_(1.0 / std.clamp_min(1e-6))  # a constant dimension becomes 0, not inf

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, T, D)."""
        return (x - self.mean) * self.inv_std


class ModalityProjection(nn.Module):
    """Projects each feature of one modality to d and fuses them (HAN: res152 and r2plus1d
    are projected separately, concatenated, then fused by a linear layer). `elu`: an ELU after
    each projection and after the fusion (CoLeaF's fc_a, fc_v, fc_st, fc_fusion)."""

    def __init__(self, dims: dict[str, int], d_model: int, standardize: bool = False, elu: bool = False):
        super().__init__()
        self.names = list(dims)
        self.norm = nn.ModuleDict({n: Standardize(dim) for n, dim in dims.items()}) if standardize else None
        self.proj = nn.ModuleDict({n: nn.Linear(dim, d_model) for n, dim in dims.items()})
        self.fuse = nn.Linear(len(dims) * d_model, d_model) if len(dims) > 1 else nn.Identity()
        self.act = nn.ELU() if elu else None

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """{name: (B, T, D_name)} -> (B, T, d)."""
        x = {n: self.norm[n](features[n]) if self.norm is not None else features[n] for n in self.names}
        if self.act is None:
            return self.fuse(torch.cat([self.proj[n](x[n]) for n in self.names], dim=-1))
        z = torch.cat([self.act(self.proj[n](x[n])) for n in self.names], dim=-1)
        return self.act(self.fuse(z)) if len(self.names) > 1 else z


class AVVPModel(nn.Module):
    """HAN / MMIL backbone over named features.

    `features` is a list of `{name, modality, dim}` (a shard manifest's entries).
    """

    def __init__(self, features: list[dict], num_classes: int, cfg: ModelConfig):
        super().__init__()
        self.cfg, self.num_classes = cfg, num_classes
        self.features = [{"name": f["name"], "modality": f["modality"], "dim": int(f["dim"])} for f in features]
        by = {m: {f["name"]: f["dim"] for f in self.features if f["modality"] == m} for m in ("audio", "visual")}
        if not by["audio"] or not by["visual"]:
            raise ValueError(f"need at least one audio and one visual feature, got {self.features}")
        coleaf = cfg.backbone == "coleaf"
        self.audio_in = ModalityProjection(by["audio"], cfg.d_model, cfg.standardize, elu=coleaf)
        self.visual_in = ModalityProjection(by["visual"], cfg.d_model, cfg.standardize, elu=coleaf)
        if coleaf:
            self.encoder = CoLeaFEncoder(cfg.d_model, cfg.num_layers, cfg.num_heads, cfg.ffn_dim, cfg.dropout,
                                         cfg.cross_attention_mix)
            self.head = CoLeaFHead(cfg.d_model, num_classes, cfg.visual_dropout, cfg.evidence_temperature)
        else:
            self.encoder = HANEncoder(cfg.d_model, cfg.num_layers, cfg.num_heads, cfg.ffn_dim, cfg.dropout,
                                      cfg.share_layers)
            self.head = MMILHead(cfg.d_model, num_classes)
        self.embed = ClassAwareEmbedding(cfg.d_model, cfg.embed_dim, num_classes) if cfg.embed_dim else None

    @torch.no_grad()
    def set_feature_stats(self, stats: dict[str, dict]) -> None:
        """Fixes the input standardisation (`ModelConfig.standardize`) from a shard manifest's
        `stats`: {feature name: {"mean": [D], "std": [D]}}."""
        for proj in (self.audio_in, self.visual_in):
            for name in proj.names:
                if name not in stats:
                    raise ValueError(f"no statistics for feature {name!r} (have {sorted(stats)})")
                proj.norm[name].set_stats(stats[name]["mean"], stats[name]["std"])

    @property
    def modalities(self) -> dict[str, str]:
        """{feature name: "audio" | "visual"}."""
        return {f["name"]: f["modality"] for f in self.features}

    def project(self, features: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder's inputs: {name: (B, T, D)} -> audio, visual (B, T, d), each segment
        projected on its own (no mask needed)."""
        return self.audio_in(features), self.visual_in(features)

    def forward(self, features: dict[str, torch.Tensor], mask: torch.Tensor | None = None) -> ModelOutput:
        """features: {name: (B, T, D)}; mask: (B, T) bool, True on real steps.

        Returns P (B, T, 2, C), p, p_a, p_v (B, C), the encoder states h_a, h_v and its
        inputs z_a, z_v (B, T, d).
        """
        z_a, z_v = self.project(features)
        h_a, h_v = self.encoder(z_a, z_v, None if mask is None else ~mask)
        if self.cfg.backbone == "coleaf":
            out = self.head(h_a, h_v, mask, z_a, z_v)
        else:
            out = self.head(torch.stack([h_a, h_v], dim=2), mask)
        out.h_a, out.h_v, out.z_a, out.z_v = h_a, h_v, z_a, z_v
        return out

    def swapped_modality_level(self, z_a: torch.Tensor, z_v: torch.Tensor, mask: torch.Tensor | None,
                               modality: int) -> torch.Tensor:
        """`forward(...).modality_level()[:, modality]` from projected inputs (`project`), e.g.
        one video's audio with another's visual track (`z_v[partner]`): the projections are
        not computed again, and only what feeds that modality's pooled probabilities runs
        (the last encoder layer and the head for that modality). z_a, z_v: (B, T, d);
        mask: (B, T) bool. Returns (B, C). HAN's backbone only (the refinement's)."""
        h = self.encoder.forward_one(z_a, z_v, None if mask is None else ~mask, modality)
        return self.head.modality_level(h, mask)
