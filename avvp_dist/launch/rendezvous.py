"""The rendezvous address of a SLURM job, as SLURM itself reaches the first allocated node:
that node's NodeAddr.

A node's name need not resolve from the others (`getent hosts n1` is empty on the local
two-node cluster, and on clusters whose node names are not in DNS), so a rendezvous at the
name times out. SLURM reaches each node at its NodeAddr (`scontrol show node -o NAME`),
which is the name itself when slurm.conf sets none. The address is resolved once per job,
in the batch script, and exported to every task:

- `slurm/train.sh` exports `MASTER_ADDR=$(python -m avvp_dist.launch.rendezvous)`;
- the submitit launcher adds the same command to its batch script as a setup line that
  exports `ADDR_VARIABLE`; each task then replaces submitit's MASTER_ADDR (the node name)
  with it.

    python -m avvp_dist.launch.rendezvous    # inside a job: prints the address
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

ADDR_VARIABLE = "AVVP_RENDEZVOUS_ADDR"
_NODE_ADDR = re.compile(r"(?:^|\s)NodeAddr=(\S+)")


def _scontrol(*args: str) -> str:
    try:
        out = subprocess.run(["scontrol", *args], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise RuntimeError("scontrol not found: the rendezvous address is resolved inside a SLURM job") from None
    if out.returncode != 0:
        raise RuntimeError(f"scontrol {' '.join(args)} failed (exit {out.returncode}): {out.stderr.strip()}")
    return out.stdout


def first_node(nodelist: str) -> str:
    """The first host of a SLURM host list, as SLURM expands it."""
    hosts = _scontrol("show", "hostnames", nodelist).split()
    if not hosts:
        raise RuntimeError(f"scontrol show hostnames {nodelist!r} printed no host")
    return hosts[0]


def node_addr(node: str) -> str:
    """The address SLURM reaches `node` at (its NodeAddr; the name when none is set)."""
    m = _NODE_ADDR.search(_scontrol("show", "node", "-o", node))
    return m.group(1) if m else node


def master_addr(env: dict | None = None) -> str:
    """The NodeAddr of the job's first node (SLURM_JOB_NODELIST)."""
    env = os.environ if env is None else env
    nodelist = env.get("SLURM_JOB_NODELIST")
    if not nodelist:
        raise RuntimeError("SLURM_JOB_NODELIST is not set: the rendezvous address is resolved inside a SLURM job")
    return node_addr(first_node(nodelist))


def setup_line(python: str = sys.executable) -> str:
    """The batch-script line that resolves the address once and exports it as ADDR_VARIABLE."""
    return f"export {ADDR_VARIABLE}=$({shlex.quote(python)} -m avvp_dist.launch.rendezvous) || exit 2"


def main() -> int:
    try:
        print(master_addr())
    except RuntimeError as e:
        print(f"avvp_dist.launch.rendezvous: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
