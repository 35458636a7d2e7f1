"""How a run stops: signals, the ranks' agreement on them, marker files and exit codes, in one place.

A signal handler only records what was asked; the ranks agree at the next step.

Two kinds, each with its own outcome (README, "Preemption"):
- PREEMPT (SIGUSR2, or the signal `SUBMITIT_PREEMPT_SIGNAL` names): save a checkpoint, exit
  with `EXIT_PREEMPTED` (3), and be requeued (slurm/train.sh, submitit);
- TERMINATE (SIGTERM: scancel, a node shutting down): save a checkpoint, exit with
  `EXIT_TERMINATED` (143, 128 + SIGTERM), and do not requeue.
A rank may see a signal that another did not; the kind every rank acts on is the largest
any rank saw, so a SIGTERM anywhere wins over a preemption signal: a cancelled job never
requeues itself.

Exit codes of every training entry (`launch.entry`): 0 done; `EXIT_BAD_INPUT` (2) bad config,
data or checkpoint, or a folder some node cannot see; `EXIT_PREEMPTED` (3); `EXIT_STOPPED` (4)
too many non-finite losses in a row, a checkpoint saved; `EXIT_TERMINATED` (143). Batch
scripts read the marker files a stop leaves in the run folder rather than srun's exit code
(`PREEMPTED_MARKER`, `TERMINATED_MARKER`).
"""
from __future__ import annotations

import os
import signal
from pathlib import Path

import torch
import torch.distributed as dist

NONE, PREEMPT, TERMINATE = 0, 1, 2
EXIT_BAD_INPUT = 2  # the message names the key, file or node
EXIT_PREEMPTED = 3  # a checkpoint was saved after a preemption signal; requeue
EXIT_STOPPED = 4  # too many non-finite losses in a row; the last good state was saved
EXIT_TERMINATED = 128 + signal.SIGTERM  # a checkpoint was saved after SIGTERM; do not requeue
# written in the run folder with EXIT_PREEMPTED: srun --kill-on-bad-exit may kill the last ranks
# while they exit with code 3, so a batch script reads this file rather than srun's exit code
PREEMPTED_MARKER = "PREEMPTED"
# after a SIGTERM stop, every rank's checkpoint saved: what slurm/train.sh reports on (an exit code of
# 143 alone also comes from a task that SIGTERM killed before it could save, e.g. srun ending the
# other tasks after one of them died)
TERMINATED_MARKER = "TERMINATED"


class TrainingStopped(RuntimeError):
    """The run stopped on purpose (too many non-finite losses); a checkpoint was saved."""


def preemption_signal() -> signal.Signals:
    """The signal submitit checkpoints and requeues on: SIGUSR2, or the one its documented
    SUBMITIT_PREEMPT_SIGNAL variable names. submitit has no public accessor for it (only the
    private `JobEnvironment._usr_sig`), so it is read from the same variable, the same way."""
    name = os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")
    try:
        return signal.Signals["SIG" + name]
    except KeyError:
        raise ValueError(f"SUBMITIT_PREEMPT_SIGNAL={name!r} names no signal (e.g. USR2)") from None


class StopSignals:
    """Installs the handlers; `kind` is the largest kind this process has seen (NONE first)."""

    def __init__(self):
        self.kinds = {preemption_signal(): PREEMPT, signal.SIGTERM: TERMINATE}
        self.kind = NONE
        self.previous = {s: signal.signal(s, self._handle) for s in self.kinds}

    def _handle(self, signum, frame) -> None:
        self.kind = max(self.kind, self.kinds[signum])

    def restore(self) -> None:
        """Puts back the handlers that were there before (a launcher's own, e.g. submitit's)."""
        for s, handler in self.previous.items():
            signal.signal(s, handler)


def agree_step(nonfinite: torch.Tensor, kind: int) -> tuple[bool, int]:
    """One collective and one host read per micro-step for both things the ranks must agree
    on: whether any rank's loss is non-finite (then every rank skips the step), and the
    largest stop-signal kind any rank has seen (the kind every rank acts on).
    nonfinite: () bool on the loss's device; kind: this rank's `StopSignals.kind`."""
    flags = torch.stack([nonfinite.to(torch.float32), torch.full((), float(kind), device=nonfinite.device)])
    if dist.is_initialized():
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
    bad, agreed = flags.tolist()
    return bad > 0, int(agreed)


def clear_markers(run_dir: Path) -> None:
    """Removes the markers an earlier stop left (rank 0, at start)."""
    for marker in (PREEMPTED_MARKER, TERMINATED_MARKER):
        (run_dir / marker).unlink(missing_ok=True)


def stopped(kind: int, run_dir: Path, step: int, checkpoint: Path, rank: int) -> int:
    """After every rank saved `checkpoint` on an agreed stop signal: rank 0 leaves the marker
    (before the exit barrier, so it exists whichever rank's exit a launcher sees first) and
    says what happened; returns the exit code."""
    preempted = kind == PREEMPT
    if rank == 0:
        marker = PREEMPTED_MARKER if preempted else TERMINATED_MARKER
        (run_dir / marker).write_text(f"step {step}\ncheckpoint {checkpoint}\n")
        print(f"preempted at step {step}: checkpoint {checkpoint}; exiting for requeue" if preempted else
              f"terminated (SIGTERM) at step {step}: checkpoint {checkpoint}; not requeued "
              "(resume with train.resume=auto)", flush=True)
    return EXIT_PREEMPTED if preempted else EXIT_TERMINATED


STATUS = {0: "finished", EXIT_PREEMPTED: "preempted", EXIT_TERMINATED: "terminated"}  # history.jsonl's word
