"""Back-end choice for the fused ops."""
from __future__ import annotations

import importlib.util

import torch


def triton_available() -> bool:
    return importlib.util.find_spec("triton") is not None


def use_triton(t: torch.Tensor, backend: str) -> bool:
    if backend not in ("auto", "torch", "triton"):
        raise ValueError(f"backend must be auto, torch or triton, got {backend!r}")
    if backend == "triton":
        if not triton_available():
            raise RuntimeError("backend='triton' but triton is not installed (pip install avvp_dist[triton])")
        return True
    return backend == "auto" and t.is_cuda and triton_available()
