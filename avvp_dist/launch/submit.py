"""The submitit launcher: training as a checkpointable submitit job, on SLURM or locally.

    from avvp_dist.launch.submit import Resources, submit
    job = submit("recipes/configs/llp.yaml", ["data.shards=/data/llp"], Resources(nodes=2, gpus_per_node=4,
                 tasks_per_node=4), folder="runs/submitit")
    print(job.result())   # rank 0's summary: run folder, steps, test metrics

Rendezvous: the batch script resolves the first node's address once (its NodeAddr,
`launch.rendezvous`; submitit's own MASTER_ADDR is the node's name, which need not
resolve) and every task uses it.

Preemption and time-outs: SLURM (or the local executor) sends SIGUSR2 before the end. The
trainer's handler only sets a flag; at the next step boundary the ranks agree on what was
asked (engine.stop), every rank saves its part of the checkpoint and leaves training;
then every rank hands the preemption signal to submitit's own handler; rank 0's
which calls `TrainJob.checkpoint()` (the same job: it resumes from the latest complete
checkpoint of its run folder) and requeues it. submitit counts a signal as a time-out once
the job has run min(0.8 T, T - 10 min) of its T minutes, and gives up after
`slurm_max_num_timeout` of those (3 by default). SIGTERM (scancel) also saves a checkpoint,
but the job ends there: its status says so, and nothing is requeued.
"""
from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

import submitit

from avvp_dist.config import load_config
from avvp_dist.engine.record import history
from avvp_dist.engine.stop import EXIT_PREEMPTED, EXIT_TERMINATED, preemption_signal
from avvp_dist.launch.entry import train_command
from avvp_dist.launch.rendezvous import ADDR_VARIABLE, setup_line


LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK",
                      "MASTER_ADDR", "MASTER_PORT")


@dataclass
class Resources:
    """What every job asks for; the same as `slurm/train.sh`'s #SBATCH lines."""

    nodes: int = 1
    tasks_per_node: int = 2  # one training process per task (one per GPU on GPU nodes)
    cpus_per_task: int = 1
    gpus_per_node: int = 0  # 0: none asked for
    timeout_min: int = 240
    partition: str | None = None
    signal_delay_s: int = 120  # SIGUSR2 this long before the time limit
    max_num_timeout: int = 3
    job_name: str = "avvp"
    slurm_extra: dict = field(default_factory=dict)  # passed as slurm_additional_parameters

    def executor_parameters(self) -> dict:
        p = dict(nodes=self.nodes, tasks_per_node=self.tasks_per_node, cpus_per_task=self.cpus_per_task,
                 timeout_min=self.timeout_min, name=self.job_name, slurm_signal_delay_s=self.signal_delay_s)
        if self.gpus_per_node:
            p["gpus_per_node"] = self.gpus_per_node
        if self.partition:
            p["slurm_partition"] = self.partition
        if self.slurm_extra:
            p["slurm_additional_parameters"] = dict(self.slurm_extra)
        # a task that dies ends the job step instead of leaving the others waiting in a collective
        p["slurm_srun_args"] = ["--kill-on-bad-exit=1"]
        # the rendezvous address, resolved once in the batch script (the first node's NodeAddr):
        # submitit's own MASTER_ADDR is the first node's name, which need not resolve
        p["slurm_setup"] = [setup_line()]
        return p


class TrainJob(submitit.helpers.Checkpointable):
    """One training run (`avvp-dist train --config CONFIG OVERRIDES`) as a submitit job.
    Every start, first or requeued, resumes from the latest complete checkpoint."""

    def __init__(self, config: str | None, overrides: list[str]):
        self.config = str(config) if config else None
        self.overrides = list(overrides)

    def __call__(self) -> dict:
        # the job is the launcher: rank, world and rendezvous come from the allocation, never from
        # variables another launcher left in the submitting process (SLURM exports its environment)
        for name in LAUNCHER_VARIABLES:
            os.environ.pop(name, None)
        dist_env = submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        if os.environ.get("SUBMITIT_EXECUTOR") == "slurm" and os.environ.get(ADDR_VARIABLE):
            os.environ["MASTER_ADDR"] = os.environ[ADDR_VARIABLE]  # set by the batch script's setup line
        overrides = [*self.overrides, "train.resume=auto"]
        code = train_command(self.config, overrides, prog="avvp-dist submit")
        run_dir = Path(load_config(self.config, overrides).run_dir)
        ends = [e for e in history(run_dir) if e["event"] == "end"] if (run_dir / "history.jsonl").is_file() else []
        result = {"status": "finished", "rank": dist_env.rank, "world_size": dist_env.world_size,
                  "run_dir": str(run_dir), "step": ends[-1]["step"] if ends else None}
        # the kind every rank agreed on, so a rank that was not signalled itself acts the same
        if code == EXIT_PREEMPTED:
            # submitit's handler (back in place): rank 0 checkpoints the submission and
            # requeues the job, then exits; the other ranks return here
            signal.raise_signal(preemption_signal())
            return {**result, "status": f"preempted ({preemption_signal().name}) after a checkpoint"}
        if code == EXIT_TERMINATED:  # SIGTERM: a checkpoint, no requeue
            return {**result, "status": "stopped by SIGTERM after a checkpoint; not requeued"}
        if code != 0:  # the job fails; the reason is in its log (train_command printed it)
            raise RuntimeError(f"training ended with exit code {code}; the job's log says why")
        metrics = run_dir / "eval_test" / "metrics.json"
        if dist_env.rank == 0 and metrics.exists():
            result["test"] = {name: rep["metrics"] for name, rep in json.loads(metrics.read_text())["models"].items()}
        return result


def executor(folder: str | os.PathLike, resources: Resources, cluster: str | None = None) -> submitit.AutoExecutor:
    """`cluster`: "slurm", "local" (no SLURM needed), or None for submitit's choice (SLURM
    whenever its commands are installed)."""
    ex = submitit.AutoExecutor(folder=folder, cluster=cluster, slurm_max_num_timeout=resources.max_num_timeout)
    ex.update_parameters(**resources.executor_parameters())
    return ex


def submit(config: str | None, overrides: list[str], resources: Resources | None = None,
           folder: str | os.PathLike = "runs/submitit", cluster: str | None = None) -> submitit.Job:
    """Submits one training run; returns its submitit job."""
    return executor(folder, resources or Resources(), cluster).submit(TrainJob(config, overrides))


def submit_sweep(config: str | None, overrides: list[str], variants: list[list[str]],
                 resources: Resources | None = None, folder: str | os.PathLike = "runs/submitit",
                 cluster: str | None = None) -> list[submitit.Job]:
    """One job array: a run per variant (extra overrides, e.g. ["seed=1", "run_dir=runs/s1"])."""
    ex = executor(folder, resources or Resources(), cluster)
    with ex.batch():
        jobs = [ex.submit(TrainJob(config, [*overrides, *v])) for v in variants]
    return jobs
