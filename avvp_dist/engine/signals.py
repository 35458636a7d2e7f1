"""Stop signals: a handler only records what was asked; the ranks agree at the next step.

Two kinds, each with its own outcome (README, "Preemption"):
- PREEMPT (SIGUSR2, or the signal `SUBMITIT_PREEMPT_SIGNAL` names): save a checkpoint, exit
  with `EXIT_PREEMPTED` (3), and be requeued (slurm/train.sh, submitit);
- TERMINATE (SIGTERM: scancel, a node shutting down): save a checkpoint, exit with
  `EXIT_TERMINATED` (143, 128 + SIGTERM), and do not requeue.
A rank may see a signal that another did not; the kind every rank acts on is the largest
any rank saw, so a SIGTERM anywhere wins over a preemption signal: a cancelled job never
requeues itself.
"""
from __future__ import annotations

import os
import signal

import torch
import torch.distributed as dist

NONE, PREEMPT, TERMINATE = 0, 1, 2
EXIT_PREEMPTED = 3  # a checkpoint was saved after a preemption signal; requeue
EXIT_TERMINATED = 128 + signal.SIGTERM  # a checkpoint was saved after SIGTERM; do not requeue


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
