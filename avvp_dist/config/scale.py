"""How a run scales with the world size: its global batch and its length, resolved per rank.

A recipe states what it trains, independent of how many ranks run it:
- `train.global_batch` G: videos per optimizer step over every rank. Each of W ranks takes
  G / W of them (G must divide by W), in micro-batches of at most `data.batch_size` (what one
  rank holds at once); the rest is gradient accumulation: the fewest micro-steps `a` with
  (G / W) / a <= data.batch_size and a dividing G / W.
- `train.epochs` E: passes over the training split. With a fixed G an epoch is the same number
  of optimizer steps at every world size, and so are the step counts that follow from it (the
  cosine's length, HAN's StepLR every `lr_step_epochs` epochs, `warmup_steps` x G samples).

`train.global_batch: 0` keeps the per-rank batch explicit: every rank takes `data.batch_size`
per micro-step, and the global batch grows with the world size (reported as such).
`train.epochs: 0` keeps the length in `train.max_steps` optimizer steps.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from avvp_dist.config.build import ConfigError


class ScaleError(ConfigError):
    """A global batch that the world size or the micro-batch cannot divide."""


@dataclass(frozen=True)
class BatchPlan:
    """One optimizer step: `global_batch` = `world` x `micro_batch` x `grad_accum` videos.
    explicit_per_rank: the config named the per-rank batch (`train.global_batch: 0`)."""

    world: int
    global_batch: int
    micro_batch: int  # per rank, per micro-step: the DataLoader's batch
    grad_accum: int
    explicit_per_rank: bool

    def describe(self) -> str:
        how = ("per-rank batch set explicitly (data.batch_size, train.global_batch 0): the global batch grows with "
               "the world size" if self.explicit_per_rank else "train.global_batch, the same at every world size")
        return (f"global batch {self.global_batch} = {self.world} rank(s) x {self.micro_batch} per rank x "
                f"{self.grad_accum} accumulation ({how})")


def batch_plan(global_batch: int, micro_cap: int, grad_accum: int, world: int) -> BatchPlan:
    """The batch of one optimizer step on `world` ranks. global_batch 0: `micro_cap` per rank
    with `grad_accum` micro-steps (explicit). Else `global_batch` over the ranks, in
    micro-batches of at most `micro_cap`."""
    if global_batch <= 0:
        return BatchPlan(world, micro_cap * grad_accum * world, micro_cap, grad_accum, True)
    if global_batch % world:
        raise ScaleError(f"train.global_batch {global_batch} does not divide among {world} ranks: "
                         f"choose a global batch that is a multiple of {world}, or run on a world size that divides "
                         f"{global_batch}")
    share = global_batch // world
    accum = next(a for a in range(math.ceil(share / micro_cap), share + 1) if share % a == 0)
    return BatchPlan(world, global_batch, share // accum, accum, False)


def run_length(epochs: float, max_steps: int, steps_per_epoch: int) -> int:
    """Optimizer steps of the run: `epochs` x `steps_per_epoch` (rounded, at least 1) when
    epochs > 0, else `max_steps`."""
    if epochs > 0:
        return max(1, round(epochs * steps_per_epoch))
    return max_steps
