"""Which GPU a rank uses, bound before its process group starts and before any CUDA allocation.

One rule for every launcher (torchrun, srun, `accelerate launch`, submitit), from the rank's
local rank (`DistEnv.local_rank`) and the number of GPUs the process sees:

- one visible GPU: device 0 (the scheduler gave each task its own, e.g. `srun
  --gpus-per-task=1`, or a single-GPU machine);
- several: device `local_rank` (one rank per GPU of the node, torchrun's convention);
- a local rank at or past the visible count is an error naming both.

`bind_device` selects it (`torch.cuda.set_device`) so that NCCL's group (given the device),
every collective (`collectives.collective_device`), DeepSpeed (handed the index) and every
`.cuda()` use it; the SLURM dry run prints its column from `device_index`.
"""
from __future__ import annotations

import os

import torch

from avvp_dist.distributed.env import DistEnv


def device_index(local_rank: int, visible: int) -> int:
    """The CUDA device index of a rank with local rank `local_rank` that sees `visible` GPUs."""
    if visible < 1:
        raise ValueError(f"no visible GPU to bind local rank {local_rank} to")
    if visible == 1:
        return 0
    if local_rank >= visible:
        raise RuntimeError(f"local rank {local_rank} but this process sees {visible} GPUs: start at most one rank "
                           "per GPU on a node, or make one GPU visible per task (srun --gpus-per-task=1)")
    return local_rank


def bind_device(env: DistEnv) -> torch.device:
    """Selects this rank's GPU (`device_index`) and returns it; the CPU when CUDA is absent."""
    if not torch.cuda.is_available():
        return torch.device("cpu")
    try:
        index = device_index(env.local_rank, torch.cuda.device_count())
    except RuntimeError as e:  # this machine's own setting, which the dry run does not know
        raise RuntimeError(f"{e} (CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')})") from None
    torch.cuda.set_device(index)
    return torch.device("cuda", index)
