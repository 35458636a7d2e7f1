"""Benchmark: the trained UnAV-100 baseline against a linear probe on the same videos.

    python benchmarks/unav_probe.py [--seed 10] [--steps 900] [--json unav_probe.json] [overrides ...]

Synthetic UnAV-100-format data at the published feature sizes (I3D rgb and flow 1024,
VGGish 128; one row per 0.32 s), written once per seed under --data. The probe: each video's
features averaged over its rows and concatenated, standardised with the training split's
statistics, a linear classifier (Adam, full batch, 200 epochs) on the video labels; its
video-level mAP on the test split is what the classes' visibility allows a linear model.
The baseline: `avvp-dist train` (weak loss only, no teacher) with
recipes/configs/unav100_probe.yaml plus the overrides, scored on the same test split:
video-level mAP (its p against the labels) beside the detection mAP. Prints both, their
ratio, and the baseline's learning curve (validation mAP and training loss against its
prior, the loss of predicting the base rates).
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from avvp_dist.data.config import DataConfig  # noqa: E402
from avvp_dist.data.stream import ShardStream  # noqa: E402
from avvp_dist.eval.unav_metrics import video_map  # noqa: E402

CONFIG = REPO / "recipes" / "configs" / "unav100_probe.yaml"


def make_data(folder: Path, seed: int, sizes: tuple[int, int, int], raw_scale: bool) -> Path:
    """Shard folder of synthetic UnAV-100 data at the published feature sizes (made once)."""
    shards = folder / "shards"
    if not (shards / "test" / "manifest.json").exists():
        common = [f"run_dir={folder}", f"seed={seed}", "synth.dataset=unav100", f"synth.num_train={sizes[0]}",
                  f"synth.raw_scale={str(raw_scale).lower()}",
                  f"synth.num_val={sizes[1]}", f"synth.num_test={sizes[2]}", f"synth.out={folder / 'raw'}",
                  "data.dataset=unav100", f"data.root={folder / 'raw'}", f"data.shards={shards}",
                  "data.samples_per_shard=64"]
        for sub in ("synth", "shard"):
            subprocess.run([sys.executable, "-m", "avvp_dist.cli", sub, *common], check=True, cwd=REPO,
                           stdout=subprocess.DEVNULL)
    return shards


def pooled(shards: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) time-averaged, concatenated features and (N, C) labels of a split, in key order."""
    stream = ShardStream(shards / split, DataConfig(dataset="unav100", batch_size=16, num_workers=0), train=False)
    keys, xs, ys = [], [], []
    for batch in stream:
        w = batch.mask.float()[..., None]
        feats = [(batch.features[f["name"]].float() * w).sum(1) / w.sum(1) for f in stream.manifest.features]
        keys += batch.keys
        xs.append(torch.cat(feats, 1).numpy())
        ys.append(batch.labels.numpy())
    order = np.argsort(keys)
    return np.concatenate(xs)[order], np.concatenate(ys)[order]


def linear_probe(shards: Path, epochs: int = 200, lr: float = 1e-2, seed: int = 0) -> dict:
    """Video-level mAP of a standardised linear classifier on time-averaged features."""
    (xtr, ytr), (xte, yte) = pooled(shards, "train"), pooled(shards, "test")
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    torch.manual_seed(seed)
    x, y = torch.tensor((xtr - mu) / sd), torch.tensor(ytr)
    lin = torch.nn.Linear(x.shape[1], y.shape[1])
    opt = torch.optim.Adam(lin.parameters(), lr=lr)
    for _ in range(epochs):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(lin(x), y)
        loss.backward()
        opt.step()
    with torch.no_grad():
        p = torch.sigmoid(lin(torch.tensor((xte - mu) / sd))).numpy()
    return {"video_map": video_map(p, yte), "train_loss": loss.item(), "train_videos": len(xtr), "test_videos": len(xte)}


def train_baseline(shards: Path, run_dir: Path, steps: int, seed: int, overrides: list[str]) -> dict:
    shutil.rmtree(run_dir, ignore_errors=True)  # a fresh run: metrics.jsonl is appended to
    cmd = [sys.executable, "-m", "avvp_dist.cli", "train", "--config", str(CONFIG), f"data.shards={shards}",
           f"run_dir={run_dir}", f"train.max_steps={steps}", f"seed={seed}", *overrides]
    subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    test = json.loads((run_dir / "eval_test" / "metrics.json").read_text())["models"]["student"]["metrics"]
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    curve = [{"step": r["step"], "video_map": r["video_map"], "map_mean": r["map_mean"]}
             for r in records if r["kind"] == "val/student"]
    losses = [{"step": r["step"], "loss": r["loss"], "weak_prior": r["weak_prior"], "weak_floor": r["weak_floor"]}
              for r in records if r["kind"] == "train"]
    return {"test": test, "val_curve": curve, "train_loss": losses}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=10, help="data and training seed (tuning seeds: 10-12)")
    p.add_argument("--steps", type=int, default=900)
    p.add_argument("--sizes", default="600,100,200", help="train,val,test videos")
    p.add_argument("--raw-scale", action="store_true",
                   help="features in the real releases' value ranges (synth.raw_scale): VGGish 0-255, I3D >= 0")
    p.add_argument("--data", type=Path, default=REPO / "runs" / "bench" / "unav_probe")
    p.add_argument("--name", default="baseline", help="run folder name under --data/seed<N>/")
    p.add_argument("--json", type=Path)
    p.add_argument("overrides", nargs="*", help="config overrides for the baseline run")
    args = p.parse_args(argv)
    sizes = tuple(int(x) for x in args.sizes.split(","))
    folder = args.data / (f"seed{args.seed}" + "_raw" * args.raw_scale)
    shards = make_data(folder, args.seed, sizes, args.raw_scale)
    probe = linear_probe(shards, seed=args.seed)
    base = train_baseline(shards, folder / args.name, args.steps, args.seed, args.overrides)
    t = base["test"]
    print(f"UnAV-100-format synthetic data, seed {args.seed}: {sizes[0]} train / {sizes[2]} test videos, "
          f"published feature sizes{', raw value ranges' * args.raw_scale}; overrides: {' '.join(args.overrides) or '-'}")
    print("| model | video mAP | avg mAP | mAP@0.5 |\n|---|---|---|---|")
    print(f"| linear probe | {probe['video_map']:.1f} | - | - |")
    print(f"| baseline ({args.steps} steps) | {t['video_map']:.1f} | {t['map_mean']:.1f} | {t['map@0.5']:.1f} |")
    print(f"baseline / probe video mAP: {t['video_map'] / max(probe['video_map'], 1e-9):.2f}x")
    print("val curve (step: video mAP / avg mAP): " + ", ".join(
        f"{c['step']}: {c['video_map']:.1f} / {c['map_mean']:.1f}" for c in base["val_curve"]))
    print("train loss (step: loss / weak prior / weak floor): " + ", ".join(
        f"{r['step']}: {r['loss']:.3f} / {r['weak_prior']:.3f} / {r['weak_floor']:.3f}"
        for r in base["train_loss"][:: max(1, len(base["train_loss"]) // 6)]))
    if args.json:
        args.json.write_text(json.dumps({"seed": args.seed, "sizes": sizes, "raw_scale": args.raw_scale,
                                         "overrides": args.overrides,
                                         "probe": probe, "baseline": base}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
