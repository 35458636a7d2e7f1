"""Benchmark: the streaming shard loader alone vs a per-file `.npy` Dataset, next to the
samples/s training consumes.

    python benchmarks/loader.py [--epochs 3] [--throughput throughput.json] [--json loader.json]

Both read the same synthetic LLP-format videos (published feature sizes, 10 segments):
- `ShardStream`: WebDataset-format tar shards (fp16), the epoch plan, DataLoader workers,
  collated batches of 16, exactly as a training rank reads them;
- the per-file form of the published AVVP code: a map-style Dataset whose __getitem__
  `np.load`s one file per feature per video, shuffled, default collation, batches of 16.
With 0, 1 and 2 DataLoader workers each; samples/s and MB/s (bytes of the feature arrays
delivered) are medians over --epochs full epochs, after one warm-up epoch (so both read
from the page cache: this measures the loader's own cost, not the disk).
The training consumption comes from benchmarks/throughput.py's JSON when present.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from avvp_dist.data.config import DataConfig
from avvp_dist.data.features import feature_path
from avvp_dist.datasets.llp import read_llp_annotations
from avvp_dist.data.stream import ShardStream
from bench_data import DEFAULT, make_data


class PerFileDataset(Dataset):
    """One `.npy` per feature per video, loaded in __getitem__ (the published codebases' way)."""

    def __init__(self, raw: Path):
        cfg = DataConfig(dataset="llp", root=str(raw))
        ann = read_llp_annotations(raw)
        self.records = ann.split("train")
        self.classes = ann.classes
        self.specs = cfg.feature_specs()
        self.folder = raw / "features"

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int):
        rec = self.records[i]
        feats = {s.name: torch.from_numpy(np.load(feature_path(self.folder, s, rec.vid, 11))) for s in self.specs}
        y = torch.zeros(len(self.classes))
        for c in rec.labels:
            y[self.classes.index(c)] = 1
        return feats, y


def _epoch(batches) -> tuple[int, int, float]:
    n = nbytes = 0
    t0 = time.perf_counter()
    for b in batches:
        feats = b.features if isinstance(b, dict) else b[0]
        n += next(iter(feats.values())).shape[0]
        nbytes += sum(v.nbytes for v in feats.values())
    return n, nbytes, time.perf_counter() - t0


def measure(make_iter, epochs: int) -> dict:
    _epoch(make_iter())  # warm-up: page cache, worker start-up paths
    runs = [_epoch(make_iter()) for _ in range(epochs)]
    rate = statistics.median(n / s for n, _, s in runs)
    mbps = statistics.median(b / s / 1e6 for _, b, s in runs)
    return {"samples_per_s": rate, "MB_per_s": mbps, "samples": runs[0][0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--workers", default="0,1,2")
    ap.add_argument("--data", default=str(DEFAULT))
    ap.add_argument("--throughput", default="throughput.json", help="benchmarks/throughput.py's output")
    ap.add_argument("--json", default="loader.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    raw, shards = make_data(Path(args.data))
    per_file = PerFileDataset(raw)
    rows = []
    for w in [int(x) for x in args.workers.split(",")]:
        cfg = DataConfig(dataset="llp", batch_size=args.batch, num_workers=w, verify_checksums=False)
        stream = ShardStream(shards / "train", cfg, 0, 1, seed=0)
        gen = torch.Generator().manual_seed(0)
        rows.append({"loader": "shards (ShardStream)", "workers": w, **measure(lambda: iter(stream), args.epochs)})
        rows.append({"loader": "per-file .npy Dataset", "workers": w, **measure(
            lambda: iter(DataLoader(per_file, args.batch, shuffle=True, num_workers=w, generator=gen,
                                    persistent_workers=False)), args.epochs)})
        for r in rows[-2:]:
            print(f"  {r['loader']}, {w} worker(s): {r['samples_per_s']:.0f} samples/s", flush=True)

    consumed = None
    if Path(args.throughput).exists():
        tp = json.loads(Path(args.throughput).read_text())
        full = [r for r in tp["rows"] if r["variant"] == "full"] or tp["rows"]
        best = max(full, key=lambda r: r["samples_per_s"])
        consumed = {"variant": best["variant"], "ranks": best["ranks"], "samples_per_s": best["samples_per_s"],
                    "per_rank": best["samples_per_s"] / best["ranks"]}

    print(f"\nmachine: {len(os.sched_getaffinity(0))} cores; {rows[0]['samples']} videos per epoch, batch {args.batch}; "
          f"medians of {args.epochs} epochs after a warm-up\n")
    print("| loader | workers | samples/s | MB/s |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['loader']} | {r['workers']} | {r['samples_per_s']:.0f} | {r['MB_per_s']:.0f} |")
    ratios = {}
    by = {(r["loader"].split()[0], r["workers"]): r for r in rows}
    for w in sorted({r["workers"] for r in rows}):
        ratios[f"shards / per-file, {w} worker(s)"] = by["shards", w]["samples_per_s"] / by["per-file", w]["samples_per_s"]
    if consumed:
        print(f"\ntraining consumes {consumed['samples_per_s']:.0f} samples/s ({consumed['variant']} method, "
              f"{consumed['ranks']} rank(s); {consumed['per_rank']:.0f} per rank, each rank with its own loader)")
        for w in sorted({r["workers"] for r in rows}):
            ratios[f"shards with {w} worker(s) / per-rank training consumption"] = (
                by["shards", w]["samples_per_s"] / consumed["per_rank"])
    print()
    for k, v in ratios.items():
        print(f"{k}: {v:.1f}x")
    Path(args.json).write_text(json.dumps({"rows": rows, "training": consumed, "ratios": ratios}, indent=1))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
