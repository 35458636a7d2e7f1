"""Fused kernels against their plain references: torch back end, Triton through its
interpreter (in a subprocess, so TRITON_INTERPRET=1 never leaks into the suite), and the
compiled Triton kernels when a GPU is present."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kernel_cases import check_ema, check_masks

HERE = Path(__file__).resolve().parent
HAS_TRITON = importlib.util.find_spec("triton") is not None


def test_torch_masks_match_reference():
    check_masks("torch", "cpu")


def test_torch_ema_matches_reference():
    check_ema("torch", "cpu")


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed (pip install -e .[test])")
def test_triton_kernels_through_interpreter():
    # HERE for kernel_cases' helpers, in front of what is there: where avvp_dist is not installed
    # (the GPU check) PYTHONPATH is what finds it
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))
    out = subprocess.run([sys.executable, str(HERE / "kernel_cases.py"), "triton", "cpu"], env=env,
                         capture_output=True, text=True, timeout=280)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "kernels ok: backend=triton device=cpu" in out.stdout


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU: compiled Triton kernels are checked on GPU machines")
@pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed")
def test_compiled_triton_kernels_on_gpu():
    assert os.environ.get("TRITON_INTERPRET") != "1", "interpreter must not be on for the compiled test"
    check_masks("triton", "cuda")
    check_ema("triton", "cuda")


def test_auto_backend_uses_torch_on_cpu(monkeypatch):
    from avvp_dist.kernels.backend import use_triton

    assert not use_triton(torch.zeros(1), "auto")
    with pytest.raises(ValueError, match="backend must be"):
        use_triton(torch.zeros(1), "cuda")


def test_topk_keys_order_like_a_stable_descending_sort():
    """The torch top-k pass orders float32 values by integer keys; negative values, -0.0
    against 0.0 (a tie), repeated values, and the float64 fallback (a stable sort) all
    select what the definition's (-value, index) order selects."""
    import numpy as np

    from avvp_dist.kernels.masks import pseudo_masks
    from kernel_cases import ref_masks

    g = torch.Generator().manual_seed(3)
    B, T, C = 3, 23, 4
    base = torch.randn(B, T, 2, C, generator=g).round(decimals=1)  # many exact ties, negative values
    base[0, :6, 0, 0] = torch.tensor([0.0, -0.0, 0.0, -0.0, -1.5, 2.0])
    valid = torch.arange(T)[None] < torch.tensor([T, 17, 9])[:, None]
    y = torch.ones(B, C)
    k = torch.tensor([5, 17, 4], dtype=torch.int32)  # up to every valid segment
    for dtype in (torch.float32, torch.float64):
        P = base.to(dtype)
        got = pseudo_masks(P, y, valid, "topk", k=k, backend="torch")
        want = ref_masks(P.numpy(), y.numpy(), valid.numpy(), "topk", 1.0, 0.0, k.numpy(), 0.0)
        for g_, w in zip(got, want):
            assert np.array_equal(g_.numpy(), w), dtype
