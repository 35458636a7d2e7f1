"""The plain PyTorch reference loop, in HAN's training style: what a single-GPU AVVP script does.

A per-file `.npy` Dataset (one `np.load` per feature per video, ResNet-152's 80 rows pooled
to 10 segments), a DataLoader with worker processes and shuffling, an optimizer,
`loss.backward()`, `step()`, `zero_grad()`: no DeepSpeed, no shards, no teacher. The
optimizer is HAN's (`--optimizer adam`: `torch.optim.Adam`, its per-tensor default) or ours
(`--optimizer adamw-fused`: `AdamW(fused=True)`, weight decay 1e-4, with `--clip 1.0` the
same global-norm clipping), so a comparison can hold the optimizer fixed. It trains
the same model (`AVVPModel`, the same config) with the same weak loss as `avvp-dist train` in
baseline mode (teacher, pseudo, refinement and CMA off), on the same raw LLP-format folder,
and times each step and its sections with the trainer's own timer (`profiling.StepTimer`:
data, forward, backward, optimizer; samples over the summed step times after the same
warm-up), so its breakdown lines up with ours. `benchmarks/throughput.py` runs it beside our rows.

    python benchmarks/plain_loop.py --raw runs/bench/llp_data/raw --steps 80 --batch 16
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch


class PerFileDataset(torch.utils.data.Dataset):
    """Training videos of an LLP-format folder, read one `.npy` per feature per video."""

    def __init__(self, raw: Path):
        from avvp_dist.datasets.llp import LLP_CLASSES, LLP_FEATURES, read_llp_annotations

        self.raw, self.specs = Path(raw), LLP_FEATURES
        self.videos = read_llp_annotations(raw).split("train")
        self.index = {c: i for i, c in enumerate(LLP_CLASSES)}

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, i: int):
        video = self.videos[i]
        x = {}
        for spec in self.specs:
            a = np.load(self.raw / "features" / spec.file.format(name=spec.name, vid=video.vid, id=video.vid[:11]))
            if spec.pool > 1:  # HAN averages ResNet-152's 8 frames per second
                a = a.reshape(-1, spec.pool, a.shape[-1]).mean(1)
            x[spec.name] = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
        y = torch.zeros(len(self.index))
        y[[self.index[c] for c in video.labels]] = 1.0
        return x, y


def make_optimizer(params, kind: str) -> torch.optim.Optimizer:
    """HAN's `Adam(lr 3e-4)` (torch's default per-tensor form), or our trainer's fused AdamW."""
    if kind == "adam":
        return torch.optim.Adam(params, lr=3e-4)
    if kind == "adamw-fused":
        return torch.optim.AdamW(params, lr=3e-4, weight_decay=1e-4, fused=True)
    raise ValueError(f"optimizer must be adam or adamw-fused, got {kind!r}")


def train_plain(raw: Path, steps: int, batch: int, workers: int, threads: int, seed: int = 0,
                optimizer: str = "adam", clip: float = 0.0) -> dict:
    """Trains `steps` steps; returns samples/s after the warm-up, the median step time and
    every step's loss."""
    from avvp_dist.method.config import MethodConfig
    from avvp_dist.method.losses import weak_loss
    from avvp_dist.model.config import ModelConfig
    from avvp_dist.model.model import AVVPModel
    from avvp_dist.profiling import StepTimer

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = PerFileDataset(raw)
    loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
                                         persistent_workers=workers > 0)
    first = data[0][0]  # the dims the files hold (the published ones, or a test's smaller ones)
    features = [{"name": s.name, "modality": s.modality, "dim": first[s.name].shape[-1]} for s in data.specs]
    model = AVVPModel(features, len(data.index), ModelConfig()).to(device).train()
    opt = make_optimizer(model.parameters(), optimizer)
    weak = MethodConfig().weak
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    timer = StepTimer(sync)  # the trainer's section timer, the trainer's section names
    done, losses = 0, []
    while done < steps:
        batches = iter(loader)
        while done < steps:
            with timer.section("data"):
                item = next(batches, None)
                if item is not None:
                    x, y = item
                    x, y = {k: v.to(device, non_blocking=True) for k, v in x.items()}, y.to(device, non_blocking=True)
            if item is None:
                break
            with timer.section("student_forward"):
                out = model(x, torch.ones(y.shape[0], 10, dtype=torch.bool, device=device))
                loss = weak_loss(out.p, out.p_a, out.p_v, y, weak.audio_smoothing, weak.visual_smoothing)
            with timer.section("backward"):
                opt.zero_grad()
                loss.backward()
            with timer.section("optimizer"):
                if clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
                opt.step()
            losses.append(loss.detach())
            timer.end_step()
            done += 1
    skip = max(5, steps // 10)  # the trainer's profile skips the same warm-up
    measured = [s["step"] for s in timer.steps[skip:]]
    return {"variant": "plain loop", "device": device.type, "steps": steps, "batch": batch, "workers": workers,
            "threads": threads, "optimizer": optimizer, "clip": clip, "warmup_steps": skip,
            "samples_per_s": batch * len(measured) / sum(measured), "median_step_s": float(np.median(measured)),
            "sections_s": timer.summary(skip), "losses": [float(x) for x in losses]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--raw", default="runs/bench/llp_data/raw")
    ap.add_argument("--steps", type=int, default=80)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers (HAN's script: 2)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: every core)")
    ap.add_argument("--optimizer", choices=["adam", "adamw-fused"], default="adam",
                    help="HAN's per-tensor Adam, or the trainer's fused AdamW (like for like)")
    ap.add_argument("--clip", type=float, default=0.0, help="global-norm gradient clipping (the trainer's: 1.0)")
    args = ap.parse_args()
    import os

    threads = args.threads or len(os.sched_getaffinity(0))
    print(json.dumps(train_plain(Path(args.raw), args.steps, args.batch, args.workers, threads,
                                 optimizer=args.optimizer, clip=args.clip), indent=1))


if __name__ == "__main__":
    main()
