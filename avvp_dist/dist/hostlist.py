"""SLURM host lists (`SLURM_JOB_NODELIST`) and the rendezvous a SLURM job derives from them."""
from __future__ import annotations

import re

_GROUP = re.compile(r"([^\[,]+)(?:\[([^\]]*)\])?([^,]*)")


def expand_hostlist(nodelist: str) -> list[str]:
    """`"gpu[01-03,7],cpu5"` -> `["gpu01", "gpu02", "gpu03", "gpu7", "cpu5"]`, as
    `scontrol show hostnames` prints them (zero padding kept, order kept)."""
    hosts: list[str] = []
    pos = 0
    nodelist = nodelist.strip()
    while pos < len(nodelist):
        m = _GROUP.match(nodelist, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"cannot parse SLURM host list {nodelist!r} at position {pos}")
        prefix, ranges, suffix = m.groups()
        if any(c in prefix + suffix for c in "[]"):
            raise ValueError(f"unbalanced brackets in SLURM host list {nodelist!r}")
        if ranges is None:
            hosts.append(prefix + suffix)
        else:
            for part in ranges.split(","):
                lo, _, hi = part.partition("-")
                if not lo.isdigit() or (hi and not hi.isdigit()):
                    raise ValueError(f"bad range {part!r} in SLURM host list {nodelist!r}")
                width = len(lo)
                for i in range(int(lo), int(hi or lo) + 1):
                    hosts.append(f"{prefix}{i:0{width}d}{suffix}")
        pos = m.end()
        if pos < len(nodelist):
            if nodelist[pos] != ",":
                raise ValueError(f"cannot parse SLURM host list {nodelist!r} at position {pos}")
            pos += 1
    return hosts


def slurm_rendezvous(env) -> tuple[str, int]:
    """MASTER_ADDR and MASTER_PORT of a SLURM job: the first host of the allocation and a
    port in 20000-39999 picked by the job id (the same in every task and after a requeue)."""
    nodelist = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST")
    if not nodelist:
        raise RuntimeError("SLURM_JOB_NODELIST is not set: cannot pick the rendezvous host")
    job = int(env.get("SLURM_JOB_ID", "0"))
    return expand_hostlist(nodelist)[0], 20000 + job % 20000
