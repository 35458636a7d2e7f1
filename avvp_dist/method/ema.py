"""EMA teacher: a fp32 copy of the student, updated after every optimizer step taken.

Two ways to update it (`method.teacher.ema`):
- `foreach` (the default): `torch._foreach_lerp_` over the teacher's and the student's
  parameter lists, as timm's ModelEmaV3 does; a student in another precision is upcast to
  fp32 first (lerp refuses mixed dtypes).
- `flat`: the student's parameters are grouped into runs that are contiguous in memory
  (DeepSpeed ZeRO 1/2 keeps them as views into flat group buffers; `flatten_parameters_`
  does the same for a plain module); the teacher is laid out the same way, so one
  `ema_update_` launch per run (torch's lerp, or the Triton kernel on CUDA) updates
  every parameter in it.
Buffers are copied from the student.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from avvp_dist.kernels import ema_update_


def flatten_parameters_(module: nn.Module, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Makes every parameter of `module` a view into one flat buffer (returned)."""
    params = list(module.parameters())
    dtype = dtype or params[0].dtype
    flat = torch.empty(sum(p.numel() for p in params), dtype=dtype, device=params[0].device)
    offset = 0
    for p in params:
        n = p.numel()
        flat[offset:offset + n].copy_(p.detach().reshape(-1))
        p.data = flat[offset:offset + n].view_as(p)
        offset += n
    return flat


def contiguous_runs(params: list[torch.Tensor]) -> list[tuple[int, int]]:
    """(first, end) index ranges of parameters that lie back to back in one storage."""
    runs: list[list[int]] = []
    for i, p in enumerate(params):
        if runs:
            q = params[i - 1]
            if (p.is_contiguous() and q.is_contiguous() and p.dtype == q.dtype and p.device == q.device
                    and p.untyped_storage().data_ptr() == q.untyped_storage().data_ptr()
                    and p.storage_offset() == q.storage_offset() + q.numel()):
                runs[-1][1] = i + 1
                continue
        runs.append([i, i + 1])
    return [(a, b) for a, b in runs]


def _span(params: list[torch.Tensor]) -> torch.Tensor:
    """A 1-D view over back-to-back parameters."""
    first = params[0]
    if len(params) == 1:
        return first.detach().view(-1)
    total = sum(p.numel() for p in params)
    return torch.as_strided(first.detach(), (total,), (1,), first.storage_offset())


class EMATeacher:
    """theta_T <- a theta_T + (1 - a) theta_S after each optimizer step taken, a = min(decay, (1+k)/(10+k))."""

    def __init__(self, student: nn.Module, decay: float = 0.999, warmup: bool = True, backend: str = "auto",
                 ema: str = "foreach"):
        if ema not in ("foreach", "flat"):
            raise ValueError(f"ema must be foreach or flat, got {ema!r}")
        self.module = copy.deepcopy(student).float().eval()
        self.module.requires_grad_(False)
        self.decay, self.warmup, self.backend, self.ema = decay, warmup, backend, ema
        self.num_updates = 0
        self._layout: list[int] | None = None
        self._pairs: list[tuple[torch.Tensor, torch.Tensor]] = []

    def decay_at(self, k: int) -> float:
        return min(self.decay, (1 + k) / (10 + k)) if self.warmup else self.decay

    def _build(self, student_params: list[torch.Tensor]) -> None:
        """Lays the teacher out like the student's current parameter runs."""
        teacher_params = list(self.module.parameters())
        if len(teacher_params) != len(student_params):
            raise ValueError("teacher and student have different parameter lists")
        self._pairs = []
        for a, b in contiguous_runs(student_params):
            flat = torch.cat([t.detach().reshape(-1) for t in teacher_params[a:b]]).float()
            offset = 0
            for t in teacher_params[a:b]:
                t.data = flat[offset:offset + t.numel()].view_as(t)
                offset += t.numel()
            self._pairs.append((flat, _span(student_params[a:b])))
        self._layout = [p.data_ptr() for p in student_params]

    @torch.no_grad()
    def update(self, student: nn.Module) -> float:
        """One EMA step from the student's working weights; returns the decay used."""
        params = list(student.parameters())
        decay = self.decay_at(self.num_updates)
        if self.ema == "foreach":
            teacher = list(self.module.parameters())
            if len(teacher) != len(params):
                raise ValueError("teacher and student have different parameter lists")
            torch._foreach_lerp_(teacher, [p.detach().float() for p in params], 1.0 - decay)
        else:
            if self._layout != [p.data_ptr() for p in params]:
                self._build(params)
            for teacher_flat, student_flat in self._pairs:
                ema_update_(teacher_flat, student_flat, decay, backend=self.backend)
        for t, s in zip(self.module.buffers(), student.buffers()):
            t.copy_(s)
        self.num_updates += 1
        return decay

    @torch.no_grad()
    def __call__(self, *args, **kwargs):
        """Teacher forward: eval mode, no gradient."""
        self.module.eval()
        return self.module(*args, **kwargs)

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "num_updates": self.num_updates}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])  # copies in place: flat views stay valid
        self.num_updates = int(state["num_updates"])
