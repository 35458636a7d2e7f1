"""`avvp-dist` console entry: synth, shard, extract, train, demo, eval, submit, parse.

Every subcommand takes `--config FILE.yaml` and dotted overrides (`data.batch_size=8`);
the config is checked completely before any work starts. The subcommands that need
DeepSpeed (train, eval), submitit (submit) or the extraction networks (extract, parse of a video)
import them when they run, so that `--help`, `synth` and `shard` start without loading them.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import torch

from avvp_dist.config import ConfigError, RunConfig, load_config
from avvp_dist.data.annotations import SPLITS, AnnotationError
from avvp_dist.data.features import FeatureError
from avvp_dist.data.location import Location, is_url, shard_root
from avvp_dist.data.raw import raw_samples, read_annotations, shard_features
from avvp_dist.data.shards import Manifest, ShardError, write_shards
from avvp_dist.data.synth import SYNTH_VERSION, synthesize
from avvp_dist.extract.encoders import WeightsError
from avvp_dist.extract.timing import ExtractError
from avvp_dist.model.checkpoint import CheckpointError

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "recipes" / "configs" / "llp_synth.yaml"


def raw_dir(cfg: RunConfig) -> Path:
    return Path(cfg.synth.out or Path(cfg.run_dir) / "raw")


def shard_dir(cfg: RunConfig) -> Location:
    """data.shards (a local folder or a URL root), or <run_dir>/shards."""
    return shard_root(cfg.data.shards, Path(cfg.run_dir) / "shards")


def cmd_synth(cfg: RunConfig) -> Path:
    out = raw_dir(cfg)
    t0 = time.time()
    synthesize(cfg.synth, out, seed=cfg.seed, progress=True)
    print(f"synthetic {cfg.synth.dataset} dataset (generator v{SYNTH_VERSION}) written to {out} "
          f"in {time.time() - t0:.1f}s")
    return out


def cmd_shard(cfg: RunConfig, splits: list[str]) -> dict[str, Manifest]:
    if cfg.data.features is None and cfg.synth.feature_dims:  # data synthesised with other sizes
        cfg.data.features = cfg.synth.feature_specs()
    ann = read_annotations(cfg.data)
    for line in ann.report():
        print(f"  [annotations] {line}")
    out, manifests = shard_dir(cfg), {}
    if is_url(out):
        raise ShardError(f"data.shards={out!r}: shards are written to a local folder; copy them to the URL "
                         "root afterwards (see docs/data.md)")
    for split in splits:
        counts: Counter = Counter()
        records = ann.split(split)
        manifest = write_shards(
            raw_samples(records, cfg.data, counts), out / split, dataset=cfg.data.dataset, split=split,
            classes=ann.classes, features=shard_features(cfg.data.feature_specs()),
            labels=shard_features(cfg.data.label_specs()), dtype=cfg.data.shard_dtype,
            samples_per_shard=cfg.data.samples_per_shard, report={"quirks": dict(ann.quirks), "examples": ann.examples,
                                                               "reader": counts},  # filled while writing
            progress=True, total=len(records))
        manifests[split] = manifest
        print(f"  [{split}] {manifest.num_samples} videos in {len(manifest.shards)} shards -> {out / split}"
              + "".join(f"; {k}: {v}" for k, v in sorted(counts.items())))
    return manifests


def training_processes() -> int:
    """One rank per GPU; on CPU one rank per 1-2 cores (here: 2 ranks on 2+ cores)."""
    if torch.cuda.is_available():
        return torch.cuda.device_count()
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def cmd_demo(cfg: RunConfig, overrides: list[str], config: str | None) -> int:
    """The main job on the embedded synthetic data: synth -> shards -> DeepSpeed training of the
    config's preset (`ours` for the demo config; torchrun, one rank per GPU or 2 CPU ranks) -> test
    evaluation."""
    cfg.data.dataset = cfg.synth.dataset  # type: ignore[assignment]
    cfg.data.root = str(cmd_synth(cfg))
    cmd_shard(cfg, list(SPLITS))
    n = training_processes()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
           "-m", "avvp_dist.cli", "train", *(["--config", str(config)] if config else []), *overrides,
           f"data.root={cfg.data.root}", f"data.dataset={cfg.data.dataset}"]
    if cfg.data.features is not None:
        cmd.append("data.features=" + json.dumps([dataclasses.asdict(f) for f in cfg.data.features]))
    print(f"demo: training on {n} rank(s): {' '.join(cmd[2:])}", flush=True)
    return subprocess.run(cmd).returncode


def cmd_eval(cfg: RunConfig, args) -> None:
    from avvp_dist.distributed.env import discover
    from avvp_dist.distributed.group import init_distributed
    from avvp_dist.eval.run import evaluate, print_report, write_outputs

    env = discover()
    init_distributed(env)
    checkpoints = {}
    for text in args.checkpoint:
        name, _, path = text.rpartition("=")
        checkpoints[name or Path(path).stem] = path
    result = evaluate(checkpoints, shard_dir(cfg), cfg.data, args.split, args.protocol, env.rank, env.world_size,
                      args.calibrate_on, detection=cfg.eval.detection)
    if env.rank == 0:
        from avvp_dist.engine.telemetry import selection_quality
        from avvp_dist.eval.datasets import dataset_spec

        # with a teacher and a student: the training rule's masks from each against the split's truth
        result["mask_quality"] = selection_quality(result, dataset_spec(result["dataset"]), cfg.method)
        out = write_outputs(result, args.out or Path(cfg.run_dir) / f"eval_{args.split}", args.plots)
        print_report(result)
        print(f"\nwrote {out}")


def cmd_submit(cfg: RunConfig, args, overrides: list[str]) -> int:
    """Submits training through submitit (SLURM, or local processes) and, with --wait, waits."""
    from avvp_dist.launch.submit import Resources, submit, submit_sweep

    res = Resources(nodes=args.nodes, tasks_per_node=args.tasks_per_node, cpus_per_task=args.cpus_per_task,
                    gpus_per_node=args.gpus_per_node, timeout_min=args.timeout_min, partition=args.partition,
                    job_name=args.job_name)
    cluster = None if args.cluster == "auto" else args.cluster
    if args.seeds:
        variants = [[f"seed={s}", f"run_dir={Path(cfg.run_dir) / f'seed{s}'}"] for s in args.seeds]
        jobs = submit_sweep(args.config, overrides, variants, res, args.folder, cluster)
    else:
        jobs = [submit(args.config, overrides, res, args.folder, cluster)]
    for job in jobs:
        print(f"submitted job {job.job_id} ({type(job).__name__}); logs: {job.paths.stdout}", flush=True)
    if not args.wait:
        return 0
    failed = 0
    for job in jobs:
        try:
            print(f"job {job.job_id}: {job.results()[0]}", flush=True)  # rank 0's result
        except Exception as e:  # submitit re-raises the job's error with its traceback
            failed += 1
            print(f"job {job.job_id} failed: {e}", file=sys.stderr, flush=True)
    return 1 if failed else 0


def cmd_extract(cfg: RunConfig, args) -> int:
    """`.npy` files under --out, or with --shards the annotated splits as shards (data.shards
    or <run_dir>/shards), on every rank of the launcher."""
    from avvp_dist.extract.job import run_extract

    if not args.shards and not args.out:
        raise ConfigError("extract: give --out FOLDER for .npy files, or --shards")
    features = [f for f in (args.features or "").split(",") if f] or None
    return run_extract(cfg.data, args.videos, args.out, str(shard_dir(cfg)) if args.shards else None,
                       [s for s in args.splits.split(",") if s], features)


def parse_video_file(parser, path: Path) -> dict:
    """Extracts the checkpoint's features from a video file (the recipe of its dataset's
    release that makes them) and parses them."""
    from avvp_dist.data.features import check_feature, common_length
    from avvp_dist.extract.run import Extractor

    specs = [parser.feature_spec(f) for f in parser.model.features]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    arrays = Extractor.build(parser.dataset, None, specs, device).rows(path)
    names = {s.name: f"{path} ({s.name})" for s in specs}
    feats = common_length({s.name: check_feature(arrays[s.name], s, names[s.name]) for s in specs}, names)
    return {"video": path.stem, "events": parser.parse(feats)}


def cmd_parse(args) -> None:
    from avvp_dist.eval.parse import VideoParser
    from avvp_dist.extract.run import VIDEO_SUFFIXES

    if len(args.features) == 1 and Path(args.features[0]).suffix.lower() in VIDEO_SUFFIXES:
        result = parse_video_file(VideoParser(args.checkpoint, args.protocol), Path(args.features[0]))
        print(json.dumps(result | ({"video": args.video} if args.video else {}), indent=1))
        return
    bad = [item for item in args.features if "=" not in item]
    if bad:
        raise ValueError(f"{bad[0]!r}: give each feature file as name=path.npy (e.g. vggish=a.npy)")
    paths = dict(item.split("=", 1) for item in args.features)
    print(json.dumps(VideoParser(args.checkpoint, args.protocol).parse_video(paths, args.video), indent=1))


def _extract_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--videos", required=True, help="a folder of video files, or a text file listing them")
    s.add_argument("--out", help="folder for the .npy files in the release's layout (data.features_dir for `shard`)")
    s.add_argument("--shards", action="store_true",
                   help="write the annotated splits (data.root) as shards to data.shards or <run_dir>/shards")
    s.add_argument("--features", help="comma-separated features of the set (default: all of them)")
    s.add_argument("--splits", default=",".join(SPLITS), help="with --shards: comma-separated splits (default: all)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="avvp-dist", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, help: str) -> argparse.ArgumentParser:
        s = sub.add_parser(name, help=help)
        s.add_argument("--config", help="YAML config file")
        s.add_argument("overrides", nargs="*", help="dotted overrides, e.g. data.batch_size=8")
        return s

    s = add("synth", "write a synthetic dataset in the real on-disk format")
    s.add_argument("--dataset", help="shorthand for synth.dataset (llp, unav100)")
    s.add_argument("--out", help="shorthand for synth.out")
    s = add("shard", "write WebDataset shards + manifest from a raw dataset folder")
    s.add_argument("--splits", default=",".join(SPLITS), help="comma-separated splits (default: all)")
    _extract_arguments(add("extract", "raw videos to a published feature set: .npy files (--out) or shards (--shards)"))
    add("train", "train with DeepSpeed (python, torchrun, accelerate launch, srun, submitit)")
    add("demo", "the main job on the embedded synthetic data")
    s = add("eval", "score model checkpoints on a split of the shards (data.shards or <run_dir>/shards)")
    s.add_argument("--checkpoint", action="append", required=True, help="[name=]path of a model checkpoint; repeatable")
    s.add_argument("--split", default="test")
    s.add_argument("--protocol", default="han", help="han | modality | low_threshold")
    s.add_argument("--calibrate-on", help="LLP: calibrate per-class thresholds on this split (e.g. val)")
    s.add_argument("--plots", type=int, default=8, help="timeline plots for this many videos")
    s.add_argument("--out", help="output folder (default <run_dir>/eval_<split>)")
    s = add("submit", "submit training with submitit: SLURM (--cluster slurm) or local processes (--cluster local)")
    s.add_argument("--nodes", type=int, default=1)
    s.add_argument("--tasks-per-node", type=int, default=2, help="training processes per node (one per GPU)")
    s.add_argument("--cpus-per-task", type=int, default=1)
    s.add_argument("--gpus-per-node", type=int, default=0, help="0: no GPUs asked for")
    s.add_argument("--timeout-min", type=int, default=240)
    s.add_argument("--partition")
    s.add_argument("--job-name", default="avvp")
    s.add_argument("--cluster", choices=["auto", "slurm", "local"], default="auto",
                   help="auto: SLURM when its commands are installed, else local")
    s.add_argument("--folder", default="runs/submitit", help="submitit's folder (job pickles and logs)")
    s.add_argument("--seeds", type=lambda t: [int(x) for x in t.split(",")],
                   help="comma-separated seeds: a job array, one run per seed in <run_dir>/seed<N>")
    s.add_argument("--wait", action="store_true", help="wait for the results and print them")
    s = sub.add_parser("parse", help="parse one video: a video file or its feature files in, events (JSON) out")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--protocol", default="han")
    s.add_argument("--video", help="the video's name in the output (default: from the first file's path)")
    s.add_argument("features", nargs="+", help="VIDEO.mp4 (its features extracted as the checkpoint's were), "
                   "or name=path.npy for each feature the model needs")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "parse":
        try:
            cmd_parse(args)
        except (ValueError, FeatureError, OSError, WeightsError) as e:  # ExtractError is a ValueError
            print(f"avvp-dist parse: error: {e}", file=sys.stderr)
            return 2
        return 0
    overrides = list(args.overrides)
    if args.command == "synth":
        overrides += [f"synth.dataset={args.dataset}"] * bool(args.dataset) + [f"synth.out={args.out}"] * bool(args.out)
    config = args.config or (DEFAULT_CONFIG if args.command == "demo" else None)
    if args.command == "train":
        from avvp_dist.launch.entry import train_command

        return train_command(config, overrides)
    try:
        cfg = load_config(config, overrides)
        if args.command == "synth":
            cmd_synth(cfg)
        elif args.command == "shard":
            cmd_shard(cfg, [s for s in args.splits.split(",") if s])
        elif args.command == "demo":
            return cmd_demo(cfg, overrides, config)
        elif args.command == "extract":
            return cmd_extract(cfg, args)
        elif args.command == "eval":
            cmd_eval(cfg, args)
        elif args.command == "submit":
            return cmd_submit(cfg, args, overrides)
    except (ConfigError, AnnotationError, FeatureError, ShardError, CheckpointError, ExtractError, WeightsError) as e:
        print(f"avvp-dist {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
