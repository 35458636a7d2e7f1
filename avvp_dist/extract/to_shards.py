"""`avvp-dist extract --shards`: features written straight into shards, each rank its own
(`<split>-rNNN-NNNNN.tar`), then one manifest per split from every rank's ledger.

A sample holds what `avvp-dist shard` would write for the same video from the `.npy` files of
`extract` (the same checks, pooling, trimming, dtype, metadata and member order), so the two
routes give the same samples and statistics; with one rank, the same shard files.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from pathlib import Path

from avvp_dist.data.annotations import Annotations, VideoRecord
from avvp_dist.data.config import DataConfig
from avvp_dist.data.features import check_feature, common_length
from avvp_dist.data.raw import shard_features
from avvp_dist.data.shards import FeatureStats, Manifest, ShardError, ShardInfo, ShardWriter, sample_members
from avvp_dist.distributed.env import DistEnv
from avvp_dist.extract.ledger import Ledger, sha256_file, shard_intact
from avvp_dist.extract.run import Extractor, Failures, shown
from avvp_dist.extract.timing import ExtractError


def video_files(records: list[VideoRecord], videos: dict[str, Path], id_chars: int,
                missing: list[str]) -> list[tuple[VideoRecord, Path]]:
    """The records with a video file (its stem the full id, or the first `id_chars`
    characters as LLP's downloads are named); the others listed in `missing`."""
    out = []
    for rec in records:
        path = videos.get(rec.vid) or videos.get(rec.vid[:id_chars])
        if path is None:
            missing.append(rec.vid)
        else:
            out.append((rec, path))
    return out


def _entry(shard: ShardInfo, sources: dict[str, str], stats: FeatureStats, split: str) -> dict:
    return {"split": split, "shard": asdict(shard), "videos": sources,
            "sums": {k: v.tolist() for k, v in stats.sums.items()}, "rows": stats.rows}


def _done(entries: list[dict], folder: Path) -> dict[str, str]:
    """{video: source sha256} of the intact shards the ledger lists."""
    return {v: sha for e in entries if shard_intact(folder, e["shard"]) for v, sha in e["videos"].items()}


def shard_split(ex: Extractor, pairs: list[tuple[VideoRecord, Path]], folder: Path, split: str, cfg: DataConfig,
                env: DistEnv, failures: Failures) -> Counter:
    """This rank's share of one split into `folder`, a ledger entry per closed shard."""
    folder.mkdir(parents=True, exist_ok=True)
    ledger, counts = Ledger(folder, env.rank), Counter()
    entries = ledger.entries()
    done = _done(entries, folder)
    prefix = f"{split}-r{env.rank:03d}"
    start = sum(e["shard"]["name"].startswith(prefix + "-") for e in entries)  # never reuse a name
    features = shard_features(ex.specs)
    writer = ShardWriter(folder, prefix, cfg.samples_per_shard, start)
    stats, sources = FeatureStats(features, cfg.shard_dtype), {}
    order = [s.name for s in ex.specs]
    mine = pairs[env.rank::env.world_size]
    for rec, path in shown(mine, env, f"extract {split}"):
        digest = sha256_file(path)
        if rec.vid in done:
            if done[rec.vid] != digest:
                raise ExtractError(f"{path}: changed since video {rec.vid} was written to a shard in {folder}; "
                                   "remove that folder to extract again")
            counts["videos_done_before"] += 1
            continue
        try:
            arrays = ex.rows(path)
        except ExtractError as e:
            failures(rec.vid, e)
            continue
        names = {s.name: f"{path} ({s.name})" for s in ex.specs}
        feats = common_length({s.name: check_feature(arrays[s.name], s, names[s.name]) for s in ex.specs},
                              names, counts)
        writer.add(sample_members(rec.vid, feats, rec.meta(), order, cfg.shard_dtype))
        stats.add(feats)
        sources[rec.vid] = digest
        counts["videos_written"] += 1
        if writer.tar is None:  # the shard just closed
            ledger.add(_entry(writer.shards[-1], sources, stats, split))
            stats, sources = FeatureStats(features, cfg.shard_dtype), {}
    writer.close()
    if sources:
        ledger.add(_entry(writer.shards[-1], sources, stats, split))
    return counts


def merge_split(folder: Path, split: str, ann: Annotations, ex: Extractor, cfg: DataConfig, counts: Counter) -> Manifest:
    """The split's manifest from every rank's ledger: its intact shards in name order, the
    statistics summed, the counts in the report."""
    entries = [e for e in Ledger(folder, 0).entries() if shard_intact(folder, e["shard"])]
    by_name = {e["shard"]["name"]: e for e in entries}  # the last entry of a name wins
    features = shard_features(ex.specs)
    stats, seen = FeatureStats(features, cfg.shard_dtype), {}
    for name in sorted(by_name):
        e = by_name[name]
        for vid in e["videos"]:
            if vid in seen:
                raise ShardError(f"{folder}: video {vid!r} in both {seen[vid]} and {name}")
            seen[vid] = name
        stats.merge(e["sums"], e["rows"])
    if not by_name:
        raise ShardError(f"{folder}: no samples extracted for {cfg.dataset}/{split}")
    shards = [ShardInfo(**by_name[name]["shard"]) for name in sorted(by_name)]
    manifest = Manifest(cfg.dataset, split, list(ann.classes), cfg.shard_dtype, features, shards,
                        {"quirks": dict(ann.quirks), "examples": ann.examples, "reader": dict(counts)},
                        stats=stats.result())
    manifest.save(folder)
    return manifest
