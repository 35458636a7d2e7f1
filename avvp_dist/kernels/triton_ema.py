"""Triton kernel for the flat EMA update."""
from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _ema_kernel(teacher_ptr, student_ptr, n, weight, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    keep = offs < n
    t = tl.load(teacher_ptr + offs, mask=keep)
    s = tl.load(student_ptr + offs, mask=keep).to(tl.float32)
    tl.store(teacher_ptr + offs, t + weight * (s - t), mask=keep)


def ema_update_triton_(teacher: torch.Tensor, student: torch.Tensor, decay: float, block: int = 4096) -> None:
    """teacher (N,) fp32 <- lerp(teacher, student, 1 - decay); one launch."""
    n = teacher.numel()
    if n:
        _ema_kernel[(triton.cdiv(n, block),)](teacher, student, n, 1.0 - decay, BLOCK=block)
