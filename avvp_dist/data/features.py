"""Per-video feature arrays: their on-disk layout (`FeatureSpec`) and the reader (pickle disabled, checked, pooled)."""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np


@dataclass
class FeatureSpec:
    """One per-video feature array on disk, e.g. LLP's `res152/<id>.npy` of shape (80, 2048).

    `file` is a template relative to the features folder with `{name}`, `{vid}` (the
    full video id) and `{id}` (its first `id_chars` characters). `steps` is the fixed
    number of rows on disk (0: variable, as in UnAV-100); `pool` averages groups of
    that many rows when reading (res152: 80 rows at 8 fps -> 10 one-second segments).
    """

    name: str
    modality: Literal["audio", "visual"]
    dim: int
    steps: int = 0
    pool: int = 1
    file: str = "{name}/{id}.npy"

    def __post_init__(self):
        if not re.fullmatch(r"[a-z0-9][a-z0-9_]*", self.name):
            # the name is a shard member's suffix, which WebDataset lowercases when reading
            raise ValueError(f"feature name {self.name!r}: use lower-case letters, digits and '_' "
                             f"(e.g. {re.sub(r'[^a-z0-9_]', '_', self.name.lower())!r}); shard members are read back "
                             "with lower-cased suffixes, so any other name would shard and then never be found")
        if self.dim <= 0 or self.steps < 0 or self.pool <= 0:
            raise ValueError(f"feature {self.name!r}: dim, steps, pool must be positive")
        if self.steps and self.steps % self.pool:
            raise ValueError(f"feature {self.name!r}: steps {self.steps} not divisible by pool {self.pool}")

    @property
    def out_steps(self) -> int:
        """Rows after pooling (0: variable)."""
        return self.steps // self.pool


@dataclass(frozen=True)
class FeatureSet:
    """A feature release of one dataset: its model inputs, its segment-level labels (e.g.
    VALOR's CLIP / CLAP pseudo-labels, one (T, C) array per video and modality) and the
    folder, relative to the raw dataset folder, that their `file` templates start from."""

    name: str
    features: tuple[FeatureSpec, ...]
    labels: tuple[FeatureSpec, ...] = ()  # dim: the number of classes
    folder: str = "features"


class FeatureError(ValueError):
    """A feature file is missing or malformed; the message names the file."""


def feature_path(features_dir: Path, spec: FeatureSpec, vid: str, id_chars: int) -> Path:
    return Path(features_dir) / spec.file.format(name=spec.name, vid=vid, id=vid[:id_chars])


def video_from_path(spec: FeatureSpec, path: str | Path) -> str | None:
    """The video name (or id prefix) a feature file's path encodes under `spec.file`:
    `{vid}_{name}.npy` gives the full name, `{name}/{id}.npy` the id; None if it does not match."""
    parts = Path(path).parts[-(spec.file.count("/") + 1):]
    pattern = re.escape(spec.file).replace(r"\{name\}", re.escape(spec.name))
    pattern = pattern.replace(r"\{vid\}", "(?P<vid>.+)").replace(r"\{id\}", "(?P<id>.+)")
    m = re.fullmatch(pattern, "/".join(parts))
    return (m.groupdict().get("vid") or m.groupdict().get("id")) if m else None


def load_array(path: Path) -> np.ndarray:
    """`np.load` with pickle off; a missing, empty, truncated or non-npy file, or an object
    array, is a `FeatureError` naming the file."""
    if not path.is_file():
        raise FeatureError(f"{path}: feature file not found")
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
            if magic != b"\x93NUMPY":
                raise FeatureError(f"{path}: not a .npy file ({'empty' if not magic else 'no NumPy header'})")
            f.seek(0)
            return np.load(f, allow_pickle=False)
    except FeatureError:
        raise
    except (ValueError, EOFError) as e:  # pickled object arrays, bad headers, truncated data
        raise FeatureError(f"{path}: not a plain .npy array ({e})") from e
    except OSError as e:
        raise FeatureError(f"{path}: cannot be read ({e.strerror or e})") from e


MAX_ROWS_APART = 4  # variable-length features of one video may differ by this many rows (trimmed to the shortest)


def read_feature(path: Path, spec: FeatureSpec) -> np.ndarray:
    """One feature file as (T, D) float32, checked against `spec` and pooled; else a `FeatureError` naming it.

    Fixed-length features must have exactly `spec.steps` rows (res152: 80 frames, pooled to
    10 segments); `spec.pool` averages groups of rows.
    """
    return check_feature(load_array(path), spec, path)


def check_feature(arr: np.ndarray, spec: FeatureSpec, path: str | Path) -> np.ndarray:
    """`read_feature` on an array in hand (an extractor's output, named `path`): the checks,
    float32 and the pooling, the same for a file and for features written straight to shards."""
    if arr.ndim != 2 or arr.shape[1] != spec.dim:
        raise FeatureError(f"{path}: shape {arr.shape}, expected (T, {spec.dim}) for feature {spec.name!r}")
    if spec.steps and arr.shape[0] != spec.steps:
        pooled = f" ({spec.steps // spec.pool} segments of {spec.pool} frames)" if spec.pool > 1 else ""
        raise FeatureError(f"{path}: {arr.shape[0]} rows, expected {spec.steps}{pooled} for feature {spec.name!r}")
    if arr.shape[0] == 0:
        raise FeatureError(f"{path}: no rows")
    if not np.issubdtype(arr.dtype, np.floating):
        raise FeatureError(f"{path}: dtype {arr.dtype}, expected floating point")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise FeatureError(f"{path}: contains NaN or Inf")
    if spec.pool > 1:
        arr = arr[: arr.shape[0] // spec.pool * spec.pool].reshape(-1, spec.pool, spec.dim).mean(1)
    return arr


def read_segment_labels(path: Path, spec: FeatureSpec) -> np.ndarray:
    """One external segment-label file as (T, C) float32 in [0, 1] (0/1 integers, booleans or
    soft values), checked against `spec` (dim = the number of classes); else a `FeatureError`."""
    arr = load_array(path)
    if arr.ndim != 2 or arr.shape[1] != spec.dim or (spec.steps and arr.shape[0] != spec.steps) or not arr.shape[0]:
        raise FeatureError(f"{path}: shape {arr.shape}, expected ({spec.steps or 'T'}, {spec.dim}) segment labels "
                           f"{spec.name!r} (one row per segment, one column per class)")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise FeatureError(f"{path}: dtype {arr.dtype}, expected numbers")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
        raise FeatureError(f"{path}: segment labels {spec.name!r} must lie in [0, 1], "
                           f"found {arr.min()} to {arr.max()}")
    return arr


def common_length(feats: dict[str, np.ndarray], paths: dict[str, Path],
                  counts: Counter | None = None) -> dict[str, np.ndarray]:
    """Every feature of one video trimmed to the shortest, when they differ by at most
    `MAX_ROWS_APART` rows (counted in `counts`); further apart is a `FeatureError` naming the files."""
    lengths = {name: a.shape[0] for name, a in feats.items()}
    t = min(lengths.values())
    if max(lengths.values()) - t > MAX_ROWS_APART:
        raise FeatureError("feature files of different lengths (after pooling): " + ", ".join(
            f"{paths[n]}: {r} rows" for n, r in lengths.items()) + f"; at most {MAX_ROWS_APART} apart are trimmed")
    if max(lengths.values()) > t:
        if counts is not None:
            counts["videos_trimmed_to_shortest_feature"] += 1
            counts["feature_rows_trimmed"] += sum(r - t for r in lengths.values())
        feats = {k: a[:t] for k, a in feats.items()}
    return feats


def read_video_features(vid: str, specs: list[FeatureSpec], features_dir: str | Path,
                        id_chars: int = 11, counts: Counter | None = None,
                        labels: list[FeatureSpec] = ()) -> dict[str, np.ndarray]:
    """`{name: (T, D) float32}` for one video (`read_feature` each, `read_segment_labels` for
    the external `labels`, then `common_length`).

    Variable-length features (UnAV-100) may differ by a few rows between modalities:
    all are trimmed to the shortest, counted in `counts`.
    """
    paths = {spec.name: feature_path(Path(features_dir), spec, vid, id_chars) for spec in [*specs, *labels]}
    arrays = {spec.name: read_feature(paths[spec.name], spec) for spec in specs}
    arrays.update({spec.name: read_segment_labels(paths[spec.name], spec) for spec in labels})
    return common_length(arrays, paths, counts)
