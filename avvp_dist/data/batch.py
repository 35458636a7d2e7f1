"""`Batch`: what the stream yields and the objective reads, one padded batch of videos."""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch


@dataclass
class Batch:
    """A padded batch of B videos, T the longest one's rows, C classes.

    keys: (B,) video ids (shard keys); features: {name: (B, T, D)} float32 as the stream
    gives them, zero on padding; mask: (B, T) bool, True on real rows; labels: (B, C) float32
    multi-hot video labels; meta: (B,) the shard's meta dicts; segment_labels: (B, T, 2, C)
    float32 external segment labels (audio at [:, :, 0]), 0 on padding, or None when the
    shards carry none.
    """

    keys: list[str]
    features: dict[str, torch.Tensor]
    mask: torch.Tensor
    labels: torch.Tensor
    meta: list[dict]
    segment_labels: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> Batch:
        """The batch on `device`, its features in `dtype` (the training precision; None keeps
        float32); mask, labels and segment labels keep their dtypes."""
        seg = self.segment_labels
        return replace(self, features={k: v.to(device, dtype) for k, v in self.features.items()},
                       mask=self.mask.to(device), labels=self.labels.to(device),
                       segment_labels=None if seg is None else seg.to(device))
