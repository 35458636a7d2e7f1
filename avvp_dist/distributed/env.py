"""Rank and world discovery from torchrun, accelerate, SLURM or submitit, in one place."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in the job."""

    rank: int
    world_size: int
    local_rank: int
    source: str  # which launcher's variables were read


def _int(env: dict, name: str) -> int:
    try:
        return int(env[name])
    except ValueError:
        raise ValueError(f"environment variable {name}={env[name]!r} is not an integer") from None


def discover(env: dict | None = None) -> DistEnv:
    """Rank/world from the environment: torchrun and accelerate (RANK, WORLD_SIZE), then
    submitit's local executor (SUBMITIT_LOCAL_*), then SLURM (SLURM_PROCID, SLURM_NTASKS);
    a plain process is rank 0 of 1."""
    env = os.environ if env is None else env
    if "RANK" in env and "WORLD_SIZE" in env:
        rank, world = _int(env, "RANK"), _int(env, "WORLD_SIZE")
        local = _int(env, "LOCAL_RANK") if "LOCAL_RANK" in env else rank
        # the same variables from torchrun, accelerate, or submitit's TorchDistributedEnvironment
        source = f"submitit-{env['SUBMITIT_EXECUTOR']}" if env.get("SUBMITIT_EXECUTOR") else "torchrun"
    elif "SUBMITIT_LOCAL_GLOBAL_RANK" in env:
        rank, world = _int(env, "SUBMITIT_LOCAL_GLOBAL_RANK"), _int(env, "SUBMITIT_LOCAL_NTASKS")
        local, source = _int(env, "SUBMITIT_LOCAL_LOCALID"), "submitit-local"
    elif "SLURM_PROCID" in env and "SLURM_NTASKS" in env:
        rank, world = _int(env, "SLURM_PROCID"), _int(env, "SLURM_NTASKS")
        local, source = _int(env, "SLURM_LOCALID") if "SLURM_LOCALID" in env else 0, "slurm"
    else:
        rank, world, local, source = 0, 1, 0, "single"
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} outside world size {world} ({source} environment)")
    # N processes started on this machine that each see a smaller world would train N separate jobs
    for name in ("LOCAL_WORLD_SIZE", "SLURM_NTASKS"):
        if name in env and _int(env, name) > world:
            raise RuntimeError(f"{name}={env[name]} processes were started but this one sees world size {world} "
                               f"({source} variables): they would train as separate jobs. Launch with torchrun, "
                               "`accelerate launch` (ACCELERATE_USE_CPU=true ... --multi_gpu on CPU) or srun.")
    return DistEnv(rank, world, local, source)


def _slurm_counts(text: str, name: str) -> list[int]:
    """SLURM's per-node counts, `"2(x3),1"` -> [2, 2, 2, 1]."""
    out = []
    for part in text.split(","):
        m = re.fullmatch(r"(\d+)(?:\(x(\d+)\))?", part.strip())
        if m is None:
            raise ValueError(f"environment variable {name}={text!r} is not a SLURM per-node count list")
        out += [int(m.group(1))] * int(m.group(2) or 1)
    return out


def local_world_size(env: dict | None = None) -> int:
    """How many ranks of the job run on this node: LOCAL_WORLD_SIZE (torchrun, accelerate,
    submitit), else SLURM's tasks on this node (SLURM_STEP_TASKS_PER_NODE or
    SLURM_TASKS_PER_NODE, e.g. `2(x3),1`, read at SLURM_NODEID), else 1."""
    env = os.environ if env is None else env
    if "LOCAL_WORLD_SIZE" in env:
        return _int(env, "LOCAL_WORLD_SIZE")
    for name in ("SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE"):
        if env.get(name):
            counts = _slurm_counts(env[name], name)
            node = _int(env, "SLURM_NODEID") if "SLURM_NODEID" in env else 0
            return counts[min(node, len(counts) - 1)]
    return 1


def threads_per_rank(requested: int, env: dict | None = None, cores: int | None = None) -> int:
    """Compute threads for this rank: `requested` when > 0; else the CPUs SLURM gave the task
    (SLURM_CPUS_PER_TASK); else this machine's cores (its CPU affinity) divided among the
    ranks on it."""
    env = os.environ if env is None else env
    if requested > 0:
        return requested
    if env.get("SLURM_CPUS_PER_TASK"):
        return max(1, _int(env, "SLURM_CPUS_PER_TASK"))
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, local_world_size(env)))


def rendezvous(env: DistEnv, environ: dict | None = None) -> dict[str, str]:
    """The torch.distributed variables this process starts its group with: RANK, WORLD_SIZE,
    LOCAL_RANK, MASTER_ADDR, MASTER_PORT. The launcher provides the rendezvous (torchrun,
    accelerate, `slurm/train.sh`, the submitit launcher); a single process meets nobody: it
    gets MASTER_ADDR 127.0.0.1 and MASTER_PORT 0 only so that DeepSpeed's environment check
    passes (its group uses an in-memory store, no port). Several ranks without MASTER_* are
    an error that says where they come from."""
    environ = os.environ if environ is None else environ
    out = {"RANK": str(env.rank), "WORLD_SIZE": str(env.world_size), "LOCAL_RANK": str(env.local_rank)}
    if "MASTER_ADDR" in environ and "MASTER_PORT" in environ:
        addr, port = environ["MASTER_ADDR"], int(environ["MASTER_PORT"])
    elif env.world_size == 1:  # a plain process: set, so DeepSpeed looks for no MPI; never bound
        addr, port = "127.0.0.1", 0
    else:
        missing = [n for n in ("MASTER_ADDR", "MASTER_PORT") if n not in environ]
        hint = (": start the job with `sbatch slurm/train.sh`, or export MASTER_ADDR=$(python -m "
                "avvp_dist.launch.rendezvous) and a MASTER_PORT before srun") if env.source == "slurm" else ""
        raise RuntimeError(f"{env.world_size} ranks from {env.source} but {' and '.join(missing)} not set{hint}")
    out.update(MASTER_ADDR=addr, MASTER_PORT=str(port))
    return out
