"""The default process group: this rank's device bound first, then NCCL on it (CUDA) or gloo (CPU)."""
from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist

from avvp_dist.distributed.device import bind_device
from avvp_dist.distributed.env import DistEnv, rendezvous


def init_distributed(env: DistEnv, timeout_s: float = 600) -> torch.device:
    """Binds this rank's device (`bind_device`), then starts the default process group at
    `rendezvous(env)`: NCCL given that device on CUDA, gloo on the CPU. Returns the device.
    Called again in a process whose group is up, it returns the device and starts nothing."""
    device = bind_device(env)
    if dist.is_initialized():
        return device
    launcher_set = "MASTER_ADDR" in os.environ and "MASTER_PORT" in os.environ
    for name, value in rendezvous(env).items():
        os.environ.setdefault(name, value)
    # a lone process (no launcher) needs no TCP store: picking a free port and binding it later
    # raced with other processes (EADDRINUSE seen in the test suite)
    store = dist.HashStore() if env.world_size == 1 and not launcher_set else None
    cuda = device.type == "cuda"  # NCCL's communicator on this rank's GPU from the start (no guessing)
    dist.init_process_group("nccl" if cuda else "gloo", store=store, rank=env.rank, world_size=env.world_size,
                            timeout=timedelta(seconds=timeout_s), **({"device_id": device} if cuda else {}))
    return device
