"""Benchmark: time to plan one epoch (`avvp_dist.data.plan.plan_epoch`) at scale.

    python benchmarks/plan.py [--shards 10000,100000] [--repeats 5]

Shards of skewed sizes (`skewed_counts`: 60% full at 256 samples, the rest lognormal,
50 of a single sample), 1 to 512 ranks x 4 DataLoader workers, batch 16, pieces of 32
(the defaults). Every rank plans the whole epoch itself (no communication), once per
epoch, so this is what each rank pays at each epoch start. Median of `--repeats`.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from avvp_dist.data.plan import plan_epoch


def skewed_counts(shards: int = 10_000, seed: int = 0) -> list[int]:
    """Shard sizes as a real writer leaves them: mostly full (256), a lognormal spread of
    smaller ones (re-sharded subsets, the last shard of each split), a few of 1 sample."""
    rng = np.random.default_rng(seed)
    counts = np.where(rng.random(shards) < 0.6, 256, np.clip(rng.lognormal(3.5, 1.2, shards), 1, 256)).astype(int)
    counts[rng.choice(shards, min(50, shards), replace=False)] = 1
    return counts.tolist()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", default="10000,100000")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    print(f"{'shards':>8} {'samples':>11} {'ranks':>6} {'workers':>7} {'plan ms':>9} {'dropped':>8} "
          f"{'drop bound':>10}")
    for shards in (int(x) for x in args.shards.split(",")):
        counts = skewed_counts(shards)
        for world in (1, 8, 64, 512):
            times = []
            for r in range(args.repeats):
                t0 = time.perf_counter()
                plan = plan_epoch(counts, world, 16, 4, 32, seed=0, epoch=r)
                times.append(time.perf_counter() - t0)
            print(f"{shards:>8} {sum(counts):>11,} {world:>6} {4:>7} {statistics.median(times) * 1e3:>9.1f} "
                  f"{plan.dropped:>8} {world * 16 - 1:>10}")


if __name__ == "__main__":
    main()
