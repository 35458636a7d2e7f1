"""Deterministic WebDataset shard writer and the `manifest.json` that describes the shards.

One sample per video: `<key>.json` (labels, events, duration, and the video's name as
`vid`) then one `<key>.<feature>.npy` per feature, in the manifest's feature order, then
one per external segment-label array (`labels`, e.g. VALOR's (10, 25) pseudo-labels); the
key is the name encoded by `data.keys.encode_key` (real names contain '.'). Tar headers
carry a fixed mtime, owner and mode, so the same input gives byte-identical shards.
The manifest records each shard's size and sha256 and each sample's sha256
(`add_member`), which the stream checks as it reads (`data.verify_checksums`).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from avvp_dist.data.keys import encode_key
from avvp_dist.data.location import Location, file_in, is_url, open_location
from avvp_dist.data.progress import progress as progress_bar

MANIFEST = "manifest.json"
FORMAT = "avvp_dist-shards/2"  # 2: per-sample sha256 (format 1 is refused: write the shards again)
SHARD_NAME = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.tar")  # a file name, never a path


class ShardError(ValueError):
    """A shard or its manifest is wrong; the message names the shard and sample key.

    `kind` is a short category used to count skips under `on_error=skip`.
    """

    def __init__(self, message: str, kind: str = "bad_shard"):
        super().__init__(message)
        self.kind = kind


@dataclass
class ShardInfo:
    name: str
    count: int
    sha256: str  # of the whole file
    bytes: int
    digests: list[str] = field(default_factory=list)  # per sample, in order (`add_member`)


@dataclass
class Manifest:
    """What a shard folder holds: counts, shapes, dtype, classes, checksums."""

    dataset: str
    split: str
    classes: list[str]
    dtype: str
    features: list[dict]  # [{name, modality, dim, steps}], steps 0 = variable length
    shards: list[ShardInfo]
    report: dict = field(default_factory=dict)  # reader quirks and skips while writing
    format: str = FORMAT
    # per feature, over every row of the split: {"rows": n, "mean": [D], "std": [D]} (model.standardize)
    stats: dict = field(default_factory=dict)
    # external segment labels, [{name, modality, dim (= classes), steps}]: (T, C) arrays in [0, 1]
    labels: list[dict] = field(default_factory=list)

    @property
    def num_samples(self) -> int:
        return sum(s.count for s in self.shards)

    def save(self, folder: Path) -> None:
        data = asdict(self)
        data["num_samples"] = self.num_samples
        tmp = folder / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, folder / MANIFEST)

    @classmethod
    def load(cls, folder: Location) -> "Manifest":
        """The manifest of a shard folder, local or a URL root (`data.location`)."""
        path = file_in(folder, MANIFEST)
        if not is_url(path) and not Path(path).is_file():
            raise ShardError(f"{path}: no manifest (write shards with `avvp-dist shard`)")
        try:
            with open_location(path) as f:
                text = f.read()
        except (OSError, ValueError) as e:  # webdataset's opener: curl or the pipe's command failed
            raise ShardError(f"{path}: cannot read the manifest ({e})") from e
        try:
            data = json.loads(text)
            if data.get("format") != FORMAT:
                old = " (written by an older avvp_dist, without per-sample checksums: run `avvp-dist shard` " \
                      "again)" if data.get("format") == "avvp_dist-shards/1" else ""
                raise ShardError(f"{path}: format {data.get('format')!r}, expected {FORMAT!r}{old}")
            data.pop("num_samples", None)
            data["shards"] = [ShardInfo(**s) for s in data["shards"]]
            manifest = cls(**data)
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as e:
            raise ShardError(f"{path}: malformed manifest ({e})") from e
        if not manifest.shards:
            raise ShardError(f"{path}: lists no shards")
        for s in manifest.shards:
            if not SHARD_NAME.fullmatch(s.name):
                raise ShardError(f"{path}: shard name {s.name!r} is not a plain file name")
            if len(s.digests) != s.count:
                raise ShardError(f"{path}: {s.name} lists {len(s.digests)} sample checksums for {s.count} samples")
        return manifest

    def verify(self, folder: str | Path, checksums: bool = False) -> None:
        """Every shard of a local folder exists with the recorded size (and, with `checksums`,
        the whole file's sha256: a full read; the stream checks each sample as it reads it)."""
        for s in self.shards:
            path = Path(folder) / s.name
            if not path.is_file():
                raise ShardError(f"{path}: listed in the manifest but missing")
            size = path.stat().st_size
            if size != s.bytes:
                raise ShardError(f"{path}: {size} bytes, manifest says {s.bytes} (truncated or rewritten?)")
            if checksums and _sha256(path) != s.sha256:
                raise ShardError(f"{path}: sha256 differs from the manifest")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def add_member(digest, name: str, data: bytes) -> None:
    """Feeds one tar member to a sample's `hashlib.sha256()`: name, length, bytes."""
    digest.update(name.encode() + b"\0" + len(data).to_bytes(8, "little"))
    digest.update(data)


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def sample_members(name: str, features: dict[str, np.ndarray], meta: dict,
                   order: list[str], dtype: str) -> Iterator[tuple[str, bytes]]:
    """(member name, bytes) of video `name`'s sample, in the fixed order json, then features."""
    try:
        key = encode_key(name)
    except ValueError as e:
        raise ShardError(str(e)) from e
    yield f"{key}.json", json.dumps(meta, sort_keys=True).encode()
    for name in order:
        yield f"{key}.{name}.npy", npy_bytes(features[name].astype(dtype))


class FeatureStats:
    """Per-dimension mean and std of each feature over every row written, in the shard dtype."""

    def __init__(self, features: list[dict], dtype: str):
        self.dtype = dtype
        self.sums = {f["name"]: np.zeros((2, f["dim"])) for f in features}  # per feature: sum, sum of squares
        self.rows = dict.fromkeys(self.sums, 0)

    def add(self, feats: dict) -> None:
        for name in self.sums:
            x = feats[name].astype(self.dtype).astype(np.float64)  # the values the stream will read
            self.sums[name] += (x.sum(0), (x * x).sum(0))
            self.rows[name] += len(x)

    def merge(self, sums: dict[str, list], rows: dict[str, int]) -> None:
        """Adds another writer's `sums` ({name: [sum, sum of squares]}) and `rows`: the
        statistics of shards written by several processes."""
        for name in self.sums:
            self.sums[name] += np.asarray(sums[name], dtype=np.float64)
            self.rows[name] += rows[name]

    def result(self) -> dict:
        stats = {}
        for name, (s1, s2) in self.sums.items():
            n = max(self.rows[name], 1)
            mean = s1 / n
            std = np.sqrt(np.maximum(s2 / n - mean ** 2, 0))
            stats[name] = {"rows": self.rows[name], "mean": mean.tolist(), "std": std.tolist()}
        return stats


class ShardWriter:
    """`<prefix>-NNNNN.tar` shards of `per_shard` samples each (prefix: the split; one per
    process where several write a split), numbered from `start`, each written to a temporary
    name and renamed when complete."""

    def __init__(self, folder: Path, prefix: str, per_shard: int, start: int = 0):
        self.folder, self.prefix, self.per_shard, self.start = folder, prefix, per_shard, start
        self.shards: list[ShardInfo] = []
        self.tar, self.count, self.digests = None, 0, []

    def add(self, members: Iterable[tuple[str, bytes]]) -> None:
        if self.tar is None:
            self.tar = tarfile.open(self.folder / f"{self._name()}.tmp", "w",
                                    format=tarfile.USTAR_FORMAT)
            self.count = 0
        digest = hashlib.sha256()
        for name, data in members:
            _add(self.tar, name, data)
            add_member(digest, name, data)
        self.digests.append(digest.hexdigest())
        self.count += 1
        if self.count == self.per_shard:
            self.close()

    def _name(self) -> str:
        return f"{self.prefix}-{self.start + len(self.shards):05d}.tar"

    def close(self) -> None:
        if self.tar is None:
            return
        self.tar.close()
        name = self._name()
        path = self.folder / name
        os.replace(self.folder / (name + ".tmp"), path)
        self.shards.append(ShardInfo(name, self.count, _sha256(path), path.stat().st_size, self.digests))
        self.tar, self.digests = None, []


def write_shards(samples: Iterable[tuple[str, dict, dict]], folder: str | Path, *, dataset: str, split: str,
                 classes: list[str], features: list[dict], dtype: str = "float16",
                 samples_per_shard: int = 256, report: dict | None = None,
                 progress: bool = False, total: int | None = None, labels: list[dict] = ()) -> Manifest:
    """Writes `<split>-NNNNN.tar` shards and `manifest.json` into `folder`.

    `samples` yields (video name, {feature or label name: (T, D) array}, meta); `labels`
    lists the external segment labels among them (manifest entries like `features`). Each shard is written
    to a temporary name and renamed when complete; the manifest is written last.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    order = [f["name"] for f in features] + [f["name"] for f in labels]
    if progress:
        samples = progress_bar(samples, total=total, desc=f"shard {dataset}/{split}", unit="video")
    writer, stats, seen = ShardWriter(folder, split, samples_per_shard), FeatureStats(features, dtype), set()
    for key, feats, meta in samples:
        if key in seen:
            raise ShardError(f"{folder}: duplicate video {key!r}")
        seen.add(key)
        writer.add(sample_members(key, feats, meta, order, dtype))
        stats.add(feats)
    writer.close()
    if not writer.shards:
        raise ShardError(f"{folder}: no samples to write for {dataset}/{split}")
    report = {k: dict(v) if isinstance(v, dict) else v for k, v in (report or {}).items()}  # counts filled while writing
    manifest = Manifest(dataset, split, list(classes), dtype, features, writer.shards, report, stats=stats.result(),
                        labels=list(labels))
    manifest.save(folder)
    return manifest
