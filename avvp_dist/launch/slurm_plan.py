"""The dry run of `slurm/train.sh`: what srun would start on each node of an allocation.

`python -m avvp_dist.launch.slurm_plan -- srun ... python -m avvp_dist.cli train ...` reads
the allocation from the job's environment (SLURM_JOB_ID, SLURM_JOB_NODELIST, SLURM_NNODES,
SLURM_NTASKS_PER_NODE, SLURM_CPUS_PER_TASK, SLURM_GPUS_PER_NODE), builds the environment
srun gives each task (block distribution: node n runs ranks n*T .. n*T+T-1), and prints
it with what `avvp_dist.distributed.env` derives from it: the same code the real tasks run.
"""
from __future__ import annotations

import os
import shlex
import sys

from avvp_dist.distributed.device import device_index
from avvp_dist.distributed.env import discover, rendezvous, threads_per_rank
from avvp_dist.launch.hostlist import expand_hostlist, slurm_rendezvous

SHOWN = ("SLURM_JOB_ID", "SLURM_JOB_NODELIST", "SLURM_NNODES", "SLURM_NTASKS", "SLURM_NTASKS_PER_NODE",
         "SLURM_CPUS_PER_TASK", "SLURM_GPUS_PER_NODE", "SLURM_GPUS_PER_TASK", "OMP_NUM_THREADS")


def _gpu_count(text: str) -> int:
    """SLURM's GPU count, `4` or `a100:4` -> 4."""
    return int(text.rsplit(":", 1)[-1])


def device_column(local_rank: int, environ: dict) -> str:
    """The dry run's device column: the GPU `distributed.device.device_index` binds, from the GPUs a
    task sees (SLURM_GPUS_PER_TASK when set, else the node's SLURM_GPUS_PER_NODE), or what stops it."""
    per_task = environ.get("SLURM_GPUS_PER_TASK")
    visible = _gpu_count(per_task or environ["SLURM_GPUS_PER_NODE"])
    try:
        return f"CUDA device {device_index(local_rank, visible)} of the {visible} it sees"
    except (RuntimeError, ValueError) as e:
        return f"no CUDA device: {e}"


def task_environments(environ: dict) -> list[list[dict]]:
    """Per node, per local task: the job environment, the rendezvous the batch script exports,
    and what srun sets for that task."""
    hosts = expand_hostlist(environ["SLURM_JOB_NODELIST"])
    nodes = int(environ.get("SLURM_NNODES", len(hosts)))
    if nodes != len(hosts):
        raise ValueError(f"SLURM_NNODES={nodes} but SLURM_JOB_NODELIST={environ['SLURM_JOB_NODELIST']!r} "
                         f"names {len(hosts)} host(s)")
    per_node = int(environ["SLURM_NTASKS_PER_NODE"].split("(")[0])
    world = nodes * per_node
    addr, port = slurm_rendezvous(environ)  # what the batch script exports to every task
    plan = []
    for n, host in enumerate(hosts):
        tasks = []
        for local in range(per_node):
            env = dict(environ, SLURM_PROCID=str(n * per_node + local), SLURM_LOCALID=str(local),
                       SLURM_NODEID=str(n), SLURM_NTASKS=str(world), SLURMD_NODENAME=host,
                       SLURM_STEP_NODELIST=environ["SLURM_JOB_NODELIST"], MASTER_ADDR=addr, MASTER_PORT=str(port),
                       SLURM_TASKS_PER_NODE=f"{per_node}(x{nodes})" if nodes > 1 else str(per_node))
            tasks.append(env)
        plan.append(tasks)
    return plan


def _program_start(command: list[str]) -> int:
    """Index of the program srun starts (the first argument after srun's own options)."""
    i = 1 if command and command[0] == "srun" else 0
    while i < len(command) and command[i].startswith("-"):
        i += 1
    return i


def describe(environ: dict, command: list[str]) -> str:
    plan = task_environments(environ)
    gpus = environ.get("SLURM_GPUS_PER_NODE")
    lines = [f"# dry run of job {environ['SLURM_JOB_ID']}: {len(plan)} node(s) x {len(plan[0])} task(s) = "
             f"{sum(map(len, plan))} rank(s); GPUs per node: {gpus or 'none asked for'}",
             "# job environment (every node): " + " ".join(f"{k}={environ[k]}" for k in SHOWN if k in environ),
             f"# the batch script, on {plan[0][0]['SLURMD_NODENAME']}, runs:", "   " + shlex.join(command),
             f"# rendezvous: in a real job, {plan[0][0]['SLURMD_NODENAME']}'s NodeAddr (scontrol show node), exported "
             "as MASTER_ADDR; here its name"]
    for tasks in plan:
        host = tasks[0]["SLURMD_NODENAME"]
        lines.append(f"\n## node {tasks[0]['SLURM_NODEID']} ({host}): {len(tasks)} task(s) of "
                     f"{shlex.join(command[_program_start(command):])}")
        for env in tasks:
            d = discover(env)
            r = rendezvous(d, env)
            device = f", {device_column(d.local_rank, env)}" if gpus else ""
            lines.append(f"   task {env['SLURM_PROCID']}: SLURM_PROCID={env['SLURM_PROCID']} "
                         f"SLURM_LOCALID={env['SLURM_LOCALID']} SLURM_NODEID={env['SLURM_NODEID']} -> RANK={r['RANK']} "
                         f"WORLD_SIZE={r['WORLD_SIZE']} LOCAL_RANK={r['LOCAL_RANK']} MASTER_ADDR={r['MASTER_ADDR']} "
                         f"MASTER_PORT={r['MASTER_PORT']}, {threads_per_rank(0, env)} thread(s){device}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print("usage: python -m avvp_dist.launch.slurm_plan -- srun ... COMMAND", file=sys.stderr)
        return 2
    try:
        print(describe(dict(os.environ), argv))
    except (KeyError, ValueError, RuntimeError) as e:
        print(f"slurm dry run: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
