"""ModelOutput: what `AVVPModel` returns, with named fields instead of dict keys."""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch


@dataclass
class ModelOutput:
    """One forward pass over B videos of T segments (rows) and C classes; d the model width.

    P: (B, T, 2, C) segment probabilities, audio at [:, :, 0] and visual at [:, :, 1].
    p: (B, C) video-level probabilities (attentive MMIL pooling over time and modality).
    p_a, p_v: (B, C) modality-level probabilities (pooling over time only).
    h_a, h_v: (B, T, d) encoder states, the input of the class-aware embeddings
    (None where only the MMIL head ran).
    z_a, z_v: (B, T, d) the projected inputs of the encoder (`AVVPModel.project`), from
    which a swapped pass starts (`AVVPModel.swapped_modality_level`).
    """

    P: torch.Tensor
    p: torch.Tensor
    p_a: torch.Tensor
    p_v: torch.Tensor
    h_a: torch.Tensor | None = None
    h_v: torch.Tensor | None = None
    z_a: torch.Tensor | None = None
    z_v: torch.Tensor | None = None

    def modality_level(self) -> torch.Tensor:
        """(B, 2, C): p_a and p_v stacked in the modality order of P."""
        return torch.stack([self.p_a, self.p_v], dim=1)

    def float(self) -> ModelOutput:
        """Probabilities in fp32, the precision of every loss and metric; the encoder states
        keep the training precision (the embedding head runs in it)."""
        return replace(self, P=self.P.float(), p=self.p.float(), p_a=self.p_a.float(), p_v=self.p_v.float())
