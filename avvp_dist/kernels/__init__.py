"""Fused ops with one API and two back ends: Triton on CUDA tensors, vectorised torch on CPU.

`backend="auto"` picks Triton for CUDA tensors when Triton is installed, torch
otherwise; `"torch"` and `"triton"` force one (tests run the Triton kernels on CPU
tensors under `TRITON_INTERPRET=1`).
"""
from avvp_dist.kernels.ema import ema_update_
from avvp_dist.kernels.masks import PseudoMasks, pseudo_masks

__all__ = ["ema_update_", "pseudo_masks", "PseudoMasks"]
