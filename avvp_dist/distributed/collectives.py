"""Collectives the method needs, identical on every rank, and no-ops in a single process."""
from __future__ import annotations

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum over ranks of a tensor without gradient; a copy, the input is untouched."""
    x = x.detach().clone()
    if is_distributed():
        dist.all_reduce(x, op=dist.ReduceOp.SUM)
    return x


class _GatherRows(torch.autograd.Function):
    """All-gather of equal (m, D) blocks; backward hands each rank the summed gradient of its block.

    Plain synchronous collectives: torch's autograd gathers leave asynchronous work that,
    unwaited (a rank whose rows get no gradient), aborted gloo processes at exit.
    """

    @staticmethod
    def forward(ctx, block: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(block) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, block.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)  # every rank's loss contributes to every block's gradient
        m = grad.shape[0] // dist.get_world_size()
        return grad[dist.get_rank() * m:(dist.get_rank() + 1) * m]


def gather_rows(x: torch.Tensor, *others: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], torch.Tensor, int]:
    """All-gathers a variable number of rows from every rank, with gradient for `x`.

    x: (N, D) with autograd; others: (N, ...) tensors gathered without gradient (e.g.
    class ids). Every rank first gathers the counts, then a padded block of
    max(1, max count) rows, so all ranks issue the same collectives even with N = 0.
    Returns (X (W*M, D), gathered others (W*M, ...), valid (W*M,) bool, offset of this
    rank's first row in X). Gradients of X flow back to the rank that owns each row.
    """
    n = x.shape[0]
    if not is_distributed():
        return x, others, torch.ones(n, dtype=torch.bool, device=x.device), 0
    w, r = dist.get_world_size(), dist.get_rank()
    counts = torch.zeros(w, dtype=torch.long, device=x.device)
    counts[r] = n
    dist.all_reduce(counts)
    m = max(1, int(counts.max()))
    pad = lambda t: torch.cat([t, t.new_zeros((m - n, *t.shape[1:]))])  # noqa: E731
    big = _GatherRows.apply(pad(x))
    gathered = []
    for t in others:
        parts = [torch.empty_like(pad(t)) for _ in range(w)]
        dist.all_gather(parts, pad(t).contiguous())
        gathered.append(torch.cat(parts))
    valid = (torch.arange(m, device=x.device)[None, :] < counts[:, None]).reshape(-1)
    return big, tuple(gathered), valid, r * m


def collective_device() -> torch.device:
    """Where tensors handed to the default group's collectives live: the current CUDA device
    under NCCL (which takes no CPU tensors), the CPU under gloo."""
    if is_distributed() and "nccl" in str(dist.get_backend()).lower():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_gather_bytes(payload: bytes) -> list[bytes]:
    """Every rank's byte string, in rank order (sizes first, then a padded uint8 block), moved
    through `collective_device()`."""
    if not is_distributed():
        return [payload]
    w, device = dist.get_world_size(), collective_device()
    data = torch.frombuffer(bytearray(payload), dtype=torch.uint8) if payload else torch.zeros(0, dtype=torch.uint8)
    sizes = torch.zeros(w, dtype=torch.long, device=device)
    sizes[dist.get_rank()] = len(payload)
    dist.all_reduce(sizes)
    sizes = sizes.tolist()
    block = torch.zeros(max(1, max(sizes)), dtype=torch.uint8, device=device)
    block[: len(payload)] = data.to(device)
    parts = [torch.empty_like(block) for _ in range(w)]
    dist.all_gather(parts, block)
    return [bytes(p[:n].cpu().numpy()) for p, n in zip(parts, sizes)]
