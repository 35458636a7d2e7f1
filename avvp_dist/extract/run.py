"""`avvp-dist extract`: video files to a published feature set, as `.npy` files in the release's
layout or straight into shards, the videos split over the ranks of any launcher.

Each rank takes every world-size-th video (sorted by id; in shards, every world-size-th
annotated video of each split, in the annotation files' order) and records what it has made
durable in a ledger (`extract.ledger`); a restart skips those videos. A video that cannot be
extracted (not a media file, no audio or video stream, too short) is an error, or under
`data.on_error=skip` counted and named in the summary and in `<destination>/.extract/skipped.json`.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from avvp_dist.data.features import FeatureError, FeatureSpec, check_feature, feature_path
from avvp_dist.data.progress import progress
from avvp_dist.data.shards import npy_bytes
from avvp_dist.distributed.collectives import all_gather_bytes
from avvp_dist.distributed.env import DistEnv
from avvp_dist.extract.ledger import FOLDER, Ledger, done_videos, sha256_file
from avvp_dist.extract.recipes import LOADERS, Recipe, VideoInput, plan
from avvp_dist.extract.timing import ExtractError

VIDEO_SUFFIXES = {".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv", ".mpg", ".mpeg"}
log = logging.getLogger(__name__)


def list_videos(source: str | Path) -> dict[str, Path]:
    """{video id (the file's stem): path}: every video file in a folder, or the paths listed
    one per line in a text file (relative to it). Two files of one id are an error naming both."""
    source = Path(source)
    if source.is_dir():
        paths = sorted(p for p in source.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    elif source.is_file():
        lines = [line.strip() for line in source.read_text().splitlines()]
        paths = [(source.parent / line) for line in lines if line and not line.startswith("#")]
    else:
        raise ExtractError(f"{source}: no such folder or list of videos")
    videos: dict[str, Path] = {}
    for p in paths:
        if p.stem in videos:
            raise ExtractError(f"two videos of id {p.stem!r}: {videos[p.stem]} and {p}")
        videos[p.stem] = p
    if not videos:
        raise ExtractError(f"{source}: no video files ({', '.join(sorted(VIDEO_SUFFIXES))})")
    return videos


@dataclass
class Extractor:
    """The networks of one feature set on one device, and the recipes that feed them."""

    specs: list[FeatureSpec]
    recipes: dict[str, Recipe]
    clip_s: float | None
    device: torch.device
    networks: dict[str, torch.nn.Module]

    @classmethod
    def build(cls, dataset: str, feature_set: str | None, specs: list[FeatureSpec], device: torch.device) -> "Extractor":
        """Loads each network the `specs` need once (`recipes.LOADERS`), on `device`
        (`recipes.plan` picks the recipes; a feature without one is an `ExtractError`)."""
        clip_s, recipes = plan(dataset, feature_set, [s.name for s in specs])
        nets = {recipes[s.name].network for s in specs}
        networks = {n: LOADERS[n]().to(device).eval() for n in sorted(nets)}
        return cls(specs, {s.name: recipes[s.name] for s in specs}, clip_s, device, networks)

    def rows(self, path: Path) -> dict[str, np.ndarray]:
        """{feature: rows in the release's layout, float32}, each checked against its spec."""
        video = VideoInput(path, self.clip_s)
        out = {}
        for spec in self.specs:
            recipe = self.recipes[spec.name]
            arr = np.asarray(recipe.rows(self.networks[recipe.network], video, self.device), dtype=np.float32)
            try:
                check_feature(arr, spec, f"{path} ({spec.name})")
            except FeatureError as e:
                raise ExtractError(str(e)) from None
            out[spec.name] = arr
        return out


def shown(items: list, env: DistEnv, desc: str):
    """`items` with rank 0's progress (a bar on a terminal, lines in a log file): its share
    stands for every rank's."""
    if env.rank:
        return items
    return progress(items, desc=f"{desc} (rank 0 of {env.world_size})", unit="video")


class Failures:
    """The error policy: `raise`, or count each failed video by reason and keep its name."""

    def __init__(self, on_error: str):
        self.on_error, self.counts, self.named = on_error, Counter(), []

    def __call__(self, vid: str, error: ExtractError) -> None:
        if self.on_error == "raise":
            raise error
        reason = "too_short" if "too short" in str(error) else "bad_video"
        self.counts[f"skipped/{reason}"] += 1
        self.named.append({"video": vid, "reason": reason, "error": str(error)})
        log.warning("skipping video %s: %s", vid, error)


def write_npy(path: Path, arr: np.ndarray) -> str:
    """`arr` at `path`, through a temporary name in the same folder; returns the file's sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = npy_bytes(arr)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return hashlib.sha256(data).hexdigest()


def extract_files(ex: Extractor, videos: dict[str, Path], out: Path, env: DistEnv, id_chars: int,
                  failures: Failures) -> Counter:
    """This rank's share of `videos` as `.npy` files under `out` (the features' `file`
    templates), skipping what the ledger says is done. Returns its counts."""
    ledger, counts = Ledger(out, env.rank), Counter()
    mine = sorted(videos)[env.rank::env.world_size]
    sources = {v: sha256_file(videos[v]) for v in mine}
    done = done_videos(ledger.entries(), out, sources)
    todo = [v for v in mine if v not in done]
    counts["videos_done_before"] += len(mine) - len(todo)
    for vid in shown(todo, env, "extract"):
        try:
            arrays = ex.rows(videos[vid])
        except ExtractError as e:
            failures(vid, e)
            continue
        files = {}
        for spec in ex.specs:
            path = feature_path(out, spec, vid, id_chars)
            files[spec.name] = [str(path.relative_to(out)), write_npy(path, arrays[spec.name])]
        ledger.add({"video": vid, "source": sources[vid], "files": files})
        counts["videos_written"] += 1
    return counts


def gather_json(obj) -> list:
    """Every rank's JSON-able `obj`, in rank order; also the barrier after which rank 0 may
    read every rank's output."""
    return [json.loads(b) for b in all_gather_bytes(json.dumps(obj).encode())]


def gather_outcome(counts: Counter, failures: Failures) -> tuple[Counter, list[dict]]:
    """Every rank's counts summed and failures listed (rank order)."""
    parts = gather_json([counts + failures.counts, failures.named])
    return sum((Counter(c) for c, _ in parts), Counter()), [f for _, named in parts for f in named]


def report(destination: Path, counts: Counter, named: list[dict], limit: int = 20) -> list[str]:
    """Summary lines; every skipped video is also written to `<destination>/.extract/skipped.json`."""
    lines = ["extract: " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))]
    if named:
        folder = Path(destination) / FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "skipped.json").write_text(json.dumps(named, indent=1))
        lines += [f"  skipped {f['video']}: {f['error']}" for f in named[:limit]]
        if len(named) > limit:
            lines.append(f"  ... and {len(named) - limit} more")
        lines.append(f"  every skipped video: {folder / 'skipped.json'}")
    return lines
