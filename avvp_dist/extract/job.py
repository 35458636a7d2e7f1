"""One extraction job on this rank: the process group, the networks, the `.npy` or shard
route, the summary and (rank 0, shards) the manifests."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import torch

from avvp_dist.data.config import DataConfig
from avvp_dist.data.datasets import data_spec
from avvp_dist.data.location import is_url
from avvp_dist.data.raw import read_annotations
from avvp_dist.data.shards import ShardError
from avvp_dist.distributed.device import bind_device
from avvp_dist.distributed.env import discover, threads_per_rank
from avvp_dist.distributed.group import init_distributed
from avvp_dist.extract.run import (Extractor, Failures, extract_files, gather_json, gather_outcome, list_videos,
                                    report)
from avvp_dist.extract.timing import ExtractError
from avvp_dist.extract.to_shards import merge_split, shard_split, video_files


def chosen_specs(cfg: DataConfig, names: list[str] | None):
    """The feature set's features, or the named ones among them (an unknown name is an error)."""
    specs = cfg.feature_specs()
    if not names:
        return specs
    known = {s.name: s for s in specs}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ExtractError(f"features {unknown} are not in {cfg.dataset}/{cfg.feature_set or 'default'}: {sorted(known)}")
    return [known[n] for n in names]


def run_extract(cfg: DataConfig, videos_from: str, out: str | None, shards: str | None,
                splits: list[str], features: list[str] | None = None) -> int:
    """`avvp-dist extract` on this rank: `.npy` files under `out`, or with `shards` (a local
    folder) the `splits` of the annotations under `cfg.root` as shards. Returns 0; a failure the
    error policy does not skip raises."""
    env = discover()
    device = init_distributed(env) if env.world_size > 1 else bind_device(env)  # a lone process needs no group
    if device.type == "cpu":
        torch.set_num_threads(threads_per_rank(0))
    videos = list_videos(videos_from)
    specs = chosen_specs(cfg, features)
    if shards is not None and cfg.external_labels:
        raise ExtractError("data.external_labels=true: segment labels are not extracted; shard them from files")
    ex = Extractor.build(cfg.dataset, data_spec(cfg.dataset).feature_set(cfg.feature_set).name, specs, device)
    failures = Failures(cfg.on_error)
    if shards is None:
        counts = extract_files(ex, videos, Path(out), env, cfg.id_chars, failures)
        total, named = gather_outcome(counts, failures)
        destination = Path(out)
    else:
        if is_url(shards):
            raise ShardError(f"{shards}: shards are written to a local folder (copy them to the URL afterwards)")
        total, named, destination = shard_all(ex, cfg, videos, Path(shards), splits, env, failures)
    if env.rank == 0:
        for line in report(destination, total, named):
            print(line, flush=True)
    return 0


def shard_all(ex: Extractor, cfg: DataConfig, videos: dict, folder: Path, splits: list[str], env, failures: Failures):
    """Every split into `folder/<split>`; rank 0 writes the manifests once every rank is done."""
    ann = read_annotations(cfg)
    ids = {r.vid for recs in ann.splits.values() for r in recs}
    ids |= {v[:cfg.id_chars] for v in ids}
    counts, per_split, missing = Counter(not_in_annotations=sum(v not in ids for v in videos)), {}, {}
    for split in splits:
        missing[split] = []
        pairs = video_files(ann.split(split), videos, cfg.id_chars, missing[split])
        per_split[split] = shard_split(ex, pairs, folder / split, split, cfg, env, failures)
    parts = gather_json([counts + failures.counts, failures.named, per_split])
    total = sum((Counter(c) for c, _, _ in parts), Counter())
    if env.rank == 0:
        for split in splits:
            split_counts = sum((Counter(p[split]) for _, _, p in parts), Counter(missing_video=len(missing[split])))
            total += split_counts
            m = merge_split(folder / split, split, ann, ex, cfg, split_counts)
            print(f"  [{split}] {m.num_samples} videos in {len(m.shards)} shards -> {folder / split}"
                  + (f"; no video file for {len(missing[split])}, e.g. {missing[split][:3]}" if missing[split] else ""),
                  flush=True)
    return total, [f for _, named, _ in parts for f in named], folder
