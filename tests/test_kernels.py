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
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=str(HERE))
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
