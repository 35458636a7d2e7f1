"""Exact epoch plans: which (shard, sample range) runs each rank's DataLoader workers read.

Rules (DESIGN.md, Streaming): within an epoch no sample is delivered twice across
all ranks and workers; every rank yields the same number of batches whatever the
shard sizes; at most one global batch of samples is dropped to equalise, and it
is counted; the assignment changes with (seed, epoch).

How: each shard is cut into pieces of at most `piece_size` consecutive samples;
the pieces are permuted by (seed, epoch) and laid end to end; each rank takes
`nb * B` samples and each of its workers a contiguous part of that, holding the
batches `j` of the rank with `j % K == worker` (the order in which a DataLoader
collects batches from K workers). Workers read their runs sequentially, so shards
stream; the tail of the permuted sequence beyond `world * nb * B` is dropped.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Run:
    """Samples `start <= i < stop` of shard number `shard`, read in order."""

    shard: int
    start: int
    stop: int


@dataclass(frozen=True)
class Slot:
    """What one worker of one rank reads in one epoch, and how it batches it."""

    runs: tuple[Run, ...]
    batch_sizes: tuple[int, ...]  # its batches, in order; batch i is rank batch i * K + worker


@dataclass(frozen=True)
class EpochPlan:
    slots: tuple[tuple[Slot, ...], ...]  # [rank][worker]
    dropped: int  # samples left out this epoch, over all ranks
    num_samples: int

    def batches(self, rank: int) -> int:
        return sum(len(s.batch_sizes) for s in self.slots[rank])


def plan_epoch(counts: list[int], world_size: int, batch_size: int, num_workers: int,
               piece_size: int, seed: int, epoch: int, train: bool = True) -> EpochPlan:
    """The plan of one epoch over shards of `counts` samples.

    `train=True`: shuffled pieces, `nb = N // (world * B)` full batches on every rank.
    `train=False` (evaluation): shard order, nothing dropped, rank r takes samples
    `[r N / W, (r + 1) N / W)`, its last batch possibly short.
    """
    n = sum(counts)
    workers = max(1, num_workers)
    pieces = [Run(s, a, min(a + piece_size, c)) for s, c in enumerate(counts) for a in range(0, c, piece_size)]
    if train:
        order = np.random.default_rng([seed, epoch]).permutation(len(pieces))
        pieces = [pieces[i] for i in order]
        nb = n // (world_size * batch_size)
        if nb == 0:
            raise ValueError(f"{n} samples are fewer than one global batch "
                             f"({world_size} ranks x batch {batch_size}); lower data.batch_size")
        per_rank = [nb * batch_size] * world_size
    else:
        per_rank = [(r + 1) * n // world_size - r * n // world_size for r in range(world_size)]
    cursor = _Cursor(pieces)
    slots = []
    for size in per_rank:
        sizes = [batch_size] * (size // batch_size) + ([size % batch_size] if size % batch_size else [])
        rank_slots = []
        for k in range(workers):
            mine = tuple(sizes[k::workers])
            rank_slots.append(Slot(cursor.take(sum(mine)), mine))
        slots.append(tuple(rank_slots))
    return EpochPlan(tuple(slots), n - sum(per_rank), n)


class _Cursor:
    """Takes consecutive samples from a sequence of runs, splitting runs where needed."""

    def __init__(self, runs: list[Run]):
        self.runs, self.i, self.offset = runs, 0, 0

    def take(self, count: int) -> tuple[Run, ...]:
        out = []
        while count:
            run = self.runs[self.i]
            start = run.start + self.offset
            stop = min(run.stop, start + count)
            out.append(Run(run.shard, start, stop))
            count -= stop - start
            if stop == run.stop:
                self.i, self.offset = self.i + 1, 0
            else:
                self.offset = stop - run.start
        return tuple(out)


def consumed_per_slot(done: int, workers: int) -> list[int]:
    """Batches each worker slot has delivered once a rank has delivered `done` batches."""
    k = max(1, workers)
    return [max(0, (done - s + k - 1) // k) for s in range(k)]
