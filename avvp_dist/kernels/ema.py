"""EMA update of a flat fp32 teacher buffer from a flat student buffer, in one pass."""
from __future__ import annotations

import torch

from avvp_dist.kernels.backend import use_triton


def ema_update_(teacher: torch.Tensor, student: torch.Tensor, decay: float, backend: str = "auto") -> None:
    """teacher <- decay * teacher + (1 - decay) * student, in place.

    teacher: (N,) float32, contiguous; student: (N,) float32 / bfloat16 / float16.
    One launch reads both and writes the teacher (3 passes over memory, the floor).
    """
    if teacher.dtype != torch.float32 or teacher.dim() != 1 or not teacher.is_contiguous():
        raise ValueError("teacher must be a contiguous 1-D float32 buffer")
    if student.shape != teacher.shape or not student.is_contiguous():
        raise ValueError(f"student buffer {tuple(student.shape)} must be contiguous and match teacher {tuple(teacher.shape)}")
    if use_triton(teacher, backend):
        from avvp_dist.kernels.triton_ema import ema_update_triton_

        ema_update_triton_(teacher, student, float(decay))
    elif student.dtype == torch.float32:
        teacher.lerp_(student, 1.0 - decay)
    else:  # mixed dtypes: lerp_ refuses them; upcast in chunks to bound the temporary
        for i in range(0, teacher.numel(), 1 << 22):
            teacher[i:i + (1 << 22)].lerp_(student[i:i + (1 << 22)].float(), 1.0 - decay)
