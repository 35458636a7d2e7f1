"""Collectives the method needs, identical on every rank, and no-ops in a single process."""
from __future__ import annotations

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum over ranks of a tensor without gradient; a copy, the input is untouched."""
    x = x.detach().clone()
    if is_distributed():
        dist.all_reduce(x, op=dist.ReduceOp.SUM)
    return x


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
    from torch.distributed._functional_collectives import all_gather_single_autograd, wait_tensor

    # rows of rank r land at [r*m, (r+1)*m); backward sends each rank its rows' gradient
    big = wait_tensor(all_gather_single_autograd(pad(x).contiguous(), gather_dim=0, group=dist.group.WORLD))
    gathered = []
    for t in others:
        parts = [torch.empty_like(pad(t)) for _ in range(w)]
        dist.all_gather(parts, pad(t).contiguous())
        gathered.append(torch.cat(parts))
    valid = (torch.arange(m, device=x.device)[None, :] < counts[:, None]).reshape(-1)
    return big, tuple(gathered), valid, r * m


def all_gather_bytes(payload: bytes) -> list[bytes]:
    """Every rank's byte string, in rank order (sizes first, then a padded uint8 block)."""
    if not is_distributed():
        return [payload]
    w = dist.get_world_size()
    data = torch.frombuffer(bytearray(payload), dtype=torch.uint8) if payload else torch.zeros(0, dtype=torch.uint8)
    sizes = torch.zeros(w, dtype=torch.long)
    sizes[dist.get_rank()] = len(payload)
    dist.all_reduce(sizes)
    block = torch.zeros(max(1, int(sizes.max())), dtype=torch.uint8)
    block[: len(payload)] = data
    parts = [torch.empty_like(block) for _ in range(w)]
    dist.all_gather(parts, block)
    return [bytes(p[: int(n)].numpy()) for p, n in zip(parts, sizes)]
