"""Benchmark: end-to-end training samples/s, weak baseline vs full (every part: pseudo masks,
refinement, CMA), 1 vs 2 ranks, with the per-step breakdown, beside a plain PyTorch loop on
the same data.

    python benchmarks/throughput.py [--steps 80] [--json throughput.json] [--no-compiled] [--no-plain]

The plain loop (`benchmarks/plain_loop.py`) trains the same model with the same weak loss
(per-file `.npy` Dataset, no DeepSpeed) on the raw folder the shards were written from, with
every core: the reference for `weak` at 1 rank, timed section by section like our rows. It
runs twice: like for like (the headline ratio: the same loader workers as our runs, the
trainer's fused AdamW and its clipping at 1.0) and in HAN's style (2 loader workers,
per-tensor Adam, no clipping; an extra row). Every configuration also runs compiled
(`train.compile=true`, its compiling steps inside the warm-up) unless --no-compiled.
`--rows FILE` appends each row to FILE (JSON lines) as soon as it is measured (the GPU check
reads it while a stage runs); `--plain-only` and `--compiled-only` run one kind of row.

Synthetic LLP-format data with the published feature sizes (VGGish 128, ResNet-152 2048,
R(2+1)D 512, 10 segments) and the HAN-sized model, written once under --data. Every
configuration is a real training run (`torchrun -m avvp_dist.cli train`, DeepSpeed ZeRO 0)
with `train.profile=true`: rank 0 times each section of every step, and the table shows
medians after a warm-up. Ranks share the machine's cores (threads per rank = cores /
ranks); the batch per rank is fixed (weak scaling). The method terms are on from step 1
(no ramp) so the full method's step is measured as it runs after its ramp.

Sections: data (waiting for the next batch), student forward, backward (the student's
backward through every loss term), teacher forward (two with the modality refinement: the
batch and the swapped batch), EMA update, masks, CMA (embedding,
gather and loss), optimizer step, other (logging, the NaN agreement, loss assembly).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from bench_data import make_data

COLUMNS = [("data", "data"), ("student_forward", "stud fwd"), ("backward", "backward"),
           ("teacher_forward", "teach fwd"), ("ema", "EMA"), ("masks", "masks"), ("cma", "CMA"),
           ("optimizer", "optim"), ("other", "other")]
VARIANTS = {
    "weak": ["method.pseudo.enabled=false", "method.cma.enabled=false", "method.teacher.enabled=false"],
    "full": ["method.ramp_start=0", "method.ramp_steps=1", "method.pseudo.enabled=true", "method.refine.enabled=true",
             "method.cma.enabled=true", "method.cma.cross_video=true"],
}


def run_one(shards: Path, out: Path, variant: str, ranks: int, steps: int, batch: int, cores: int,
            extra: list[str], workers: int = 1, profile: bool = True, compiled: bool = False) -> dict:
    """One training run. Profiled: rank 0 times every section (a device sync each on a GPU), the
    record is its profile.json. Unprofiled: samples/s as the trainer reports it, nothing else.
    Compiled: train.compile=true (its compiling steps fall inside the profile's warm-up)."""
    run_dir = out / f"{variant}_{ranks}rank{'' if profile else '_unprofiled'}{'_compiled' if compiled else ''}"
    threads = max(1, cores // ranks)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}",
           "-m", "avvp_dist.cli", "train", f"run_dir={run_dir}", f"data.shards={shards}", f"data.batch_size={batch}",
           f"data.num_workers={workers}", f"train.max_steps={steps}", "train.eval_every=0", "train.checkpoint_every=0",
           "train.plots=0", "train.final_eval=false", "train.log_every=10", "train.warmup_steps=5",
           f"train.threads={threads}", f"train.profile={str(profile).lower()}",
           f"train.compile={str(compiled).lower()}", *VARIANTS[variant], *extra]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{variant} on {ranks} rank(s) failed:\n{proc.stderr[-3000:]}")
    if not profile:
        rate = float((run_dir / "summary.txt").read_text().split("throughput ")[1].split()[0])
        return {"variant": variant, "ranks": ranks, "threads_per_rank": threads, "samples_per_s": rate,
                "profiled": False, "compiled": compiled}
    record = json.loads((run_dir / "profile.json").read_text())
    record.update(variant=variant, ranks=ranks, profiled=True, compiled=compiled)
    return record


PLAIN_STYLES = {  # name: (loader workers (None: ours), optimizer, clipping)
    "like for like": (None, "adamw-fused", 1.0),  # our runs' workers, the trainer's fused AdamW and clipping
    "HAN's style": (2, "adam", 0.0),  # HAN's script: 2 workers, torch's per-tensor Adam, no clipping
}


def run_plain(raw: Path, steps: int, batch: int, cores: int, style: str, ours_workers: int) -> dict:
    """The plain reference loop in its own process, with every core, in `style` (PLAIN_STYLES)."""
    workers, optimizer, clip = PLAIN_STYLES[style]
    workers = ours_workers if workers is None else workers
    cmd = [sys.executable, str(Path(__file__).with_name("plain_loop.py")), f"--raw={raw}", f"--steps={steps}",
           f"--batch={batch}", f"--workers={workers}", f"--threads={cores}", f"--optimizer={optimizer}",
           f"--clip={clip}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS=str(cores)))
    if proc.returncode != 0:
        raise SystemExit(f"the plain loop ({style}) failed:\n{proc.stderr[-3000:]}")
    r = json.loads(proc.stdout)
    r.pop("losses")
    return {**r, "ranks": 1, "threads_per_rank": cores, "profiled": False, "plain": True, "style": style}


def table(rows: list[dict]) -> str:
    head = "| variant | ranks x threads | samples/s | step ms | " + " | ".join(c for _, c in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (4 + len(COLUMNS))]
    for r in rows:
        if r.get("plain"):
            s = r["sections_s"]
            lines.append(f"| plain loop, {r['style']} ({r['workers']} loader workers, {r['optimizer']}, clip "
                         f"{r['clip']:g}) | 1 x {r['threads']} | "
                         f"{r['samples_per_s']:.0f} | {1000 * s['step']:.1f} | "
                         + " | ".join(f"{1000 * s[k]:.1f}" if k in s else "-" for k, _ in COLUMNS) + " |")
            continue
        name = r["variant"] + (" compiled" if r.get("compiled") else "")
        if not r["profiled"]:
            lines.append(f"| {name} (unprofiled) | {r['ranks']} x {r['threads_per_rank']} | "
                         f"{r['samples_per_s']:.0f} | " + " | ".join("" for _ in range(1 + len(COLUMNS))) + " |")
            continue
        s = r["sections_s"]
        lines.append(f"| {name} | {r['ranks']} x {r['threads_per_rank']} | {r['samples_per_s']:.0f} | "
                     f"{1000 * s['step']:.1f} | " + " | ".join(f"{1000 * s.get(k, 0.0):.1f}" for k, _ in COLUMNS) + " |")
    return "\n".join(lines)


def ratios(rows: list[dict]) -> dict[str, float]:
    by = {(r["variant"], r["ranks"]): r for r in rows if r["profiled"] and not r.get("compiled")}
    out = {}
    for r in rows:
        if r.get("compiled") and r["profiled"] and (r["variant"], r["ranks"]) in by:
            eager = by[r["variant"], r["ranks"]]
            out[f"{r['variant']}, {r['ranks']} rank(s): compiled / eager samples/s"] = (r["samples_per_s"]
                                                                                     / eager["samples_per_s"])
    for plain in (r for r in rows if r.get("plain")):  # like for like first: the headline
        for r in rows:
            if r["variant"] == "weak" and r["ranks"] == 1 and not r.get("plain"):
                kind = ("profiled" if r["profiled"] else "unprofiled") + (", compiled" if r.get("compiled") else "")
                out[f"weak, 1 rank ({kind}) / plain loop, {plain['style']}, samples/s"] = (r["samples_per_s"]
                                                                                          / plain["samples_per_s"])
    for ranks in sorted({r["ranks"] for r in rows}):
        if ("weak", ranks) in by and ("full", ranks) in by:
            out[f"full/weak step time, {ranks} rank(s)"] = (by["full", ranks]["sections_s"]["step"]
                                                           / by["weak", ranks]["sections_s"]["step"])
    for variant in VARIANTS:
        if (variant, 1) in by and (variant, 2) in by:
            out[f"{variant}: 2 ranks / 1 rank samples/s"] = by[variant, 2]["samples_per_s"] / by[variant, 1]["samples_per_s"]
    for (variant, ranks), r in sorted(by.items()):
        if "ema" in r["sections_s"]:
            out[f"EMA share of the step, {variant}, {ranks} rank(s)"] = r["sections_s"]["ema"] / r["sections_s"]["step"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=80, help="optimizer steps per run (the first 10%% are warm-up)")
    ap.add_argument("--batch", type=int, default=16, help="videos per rank per step (HAN: 16)")
    ap.add_argument("--ranks", default="1,2")
    ap.add_argument("--variants", default="weak,full")
    ap.add_argument("--num-train", type=int, default=1024)
    ap.add_argument("--data", default="runs/bench/llp_data", help="synthetic data, written once")
    ap.add_argument("--out", default="runs/bench/throughput")
    ap.add_argument("--json", default="throughput.json")
    ap.add_argument("--workers", type=int, help="DataLoader workers per rank (default: 4 on a GPU; 0 on CPU, "
                    "where a worker process takes a core from the compute threads: 261 against 228 samples/s "
                    "with one on the 2-core box, benchmarks/RESULTS.md)")
    ap.add_argument("--unprofiled", action="store_true",
                    help="also run each configuration without the per-section timing (its device syncs)")
    ap.add_argument("--no-plain", action="store_true", help="leave out the plain PyTorch reference loop")
    ap.add_argument("--plain-only", action="store_true", help="only the plain loop's rows")
    ap.add_argument("--compiled", action=argparse.BooleanOptionalAction, default=True,
                    help="also run each configuration with train.compile=true (default: yes)")
    ap.add_argument("--compiled-only", action="store_true", help="only the compiled configurations")
    ap.add_argument("--rows", help="append each row here (JSON lines) as soon as it is measured")
    ap.add_argument("extra", nargs="*", help="overrides for every run, e.g. train.zero_stage=2")
    args = ap.parse_args()
    import torch

    workers = args.workers if args.workers is not None else (4 if torch.cuda.is_available() else 0)
    cores = len(os.sched_getaffinity(0))
    raw, shards = make_data(Path(args.data), args.num_train)
    rows = []

    def measured(row: dict, what: str) -> None:
        rows.append(row)
        print(f"  {what}: {row['samples_per_s']:.0f} samples/s", flush=True)
        if args.rows:
            with open(args.rows, "a") as f:
                f.write(json.dumps(row) + "\n")

    if not args.no_plain and not args.compiled_only:
        for style in PLAIN_STYLES:
            measured(run_plain(raw, args.steps, args.batch, cores, style, workers), f"plain loop, {style}")
    compiles = (True,) if args.compiled_only else (False, True) if args.compiled else (False,)
    for ranks in [] if args.plain_only else [int(x) for x in args.ranks.split(",")]:
        for variant in args.variants.split(","):
            for compiled in compiles:
                for profile in (True, False) if args.unprofiled else (True,):
                    measured(run_one(shards, Path(args.out), variant, ranks, args.steps, args.batch, cores,
                                     args.extra, workers, profile, compiled),
                             f"{variant}{' compiled' if compiled else ''} on {ranks} rank(s)"
                             f"{'' if profile else ', unprofiled'}")
    print(f"\nmachine: {cores} cores; HAN model, LLP feature sizes, batch {args.batch} per rank, {workers} loader "
          f"worker(s) per rank; medians per step in ms after warm-up\n")
    print(table(rows))
    r = ratios(rows)
    print()
    for k, v in r.items():
        print(f"{k}: {100 * v:.1f}%" if "share" in k else f"{k}: {v:.2f}x")
    Path(args.json).write_text(json.dumps({"cores": cores, "workers": workers, "rows": rows, "ratios": r}, indent=1))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
