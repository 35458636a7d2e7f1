"""Per-video feature arrays: their on-disk layout (`FeatureSpec`) and the reader (pickle disabled, checked, pooled)."""
from __future__ import annotations

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
        if self.dim <= 0 or self.steps < 0 or self.pool <= 0:
            raise ValueError(f"feature {self.name!r}: dim, steps, pool must be positive")
        if self.steps and self.steps % self.pool:
            raise ValueError(f"feature {self.name!r}: steps {self.steps} not divisible by pool {self.pool}")

    @property
    def out_steps(self) -> int:
        """Rows after pooling (0: variable)."""
        return self.steps // self.pool


class FeatureError(ValueError):
    """A feature file is missing or malformed; the message names the file."""


def feature_path(features_dir: Path, spec: FeatureSpec, vid: str, id_chars: int) -> Path:
    return Path(features_dir) / spec.file.format(name=spec.name, vid=vid, id=vid[:id_chars])


def load_array(path: Path) -> np.ndarray:
    """`np.load` with pickle off; an object array or a non-npy file is a `FeatureError`."""
    if not path.is_file():
        raise FeatureError(f"{path}: feature file not found")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as e:  # pickled object arrays and bad headers land here
        raise FeatureError(f"{path}: not a plain .npy array ({e})") from e


def read_video_features(vid: str, specs: list[FeatureSpec], features_dir: str | Path,
                        id_chars: int = 11, counts: Counter | None = None) -> dict[str, np.ndarray]:
    """`{name: (T, D) float32}` for one video, every feature trimmed to the shortest T.

    Fixed-length features must have exactly `spec.steps` rows; `spec.pool` averages
    groups of rows. Variable-length features (UnAV-100) may differ by a few rows
    between modalities: all are trimmed to the shortest, counted in `counts`.
    """
    out = {}
    for spec in specs:
        path = feature_path(Path(features_dir), spec, vid, id_chars)
        arr = load_array(path)
        if arr.ndim != 2 or arr.shape[1] != spec.dim:
            raise FeatureError(f"{path}: shape {arr.shape}, expected (T, {spec.dim}) for feature {spec.name!r}")
        if spec.steps and arr.shape[0] != spec.steps:
            raise FeatureError(f"{path}: {arr.shape[0]} rows, expected {spec.steps} for feature {spec.name!r}")
        if arr.shape[0] == 0:
            raise FeatureError(f"{path}: no rows")
        if not np.issubdtype(arr.dtype, np.floating):
            raise FeatureError(f"{path}: dtype {arr.dtype}, expected floating point")
        arr = arr.astype(np.float32)
        if not np.isfinite(arr).all():
            raise FeatureError(f"{path}: contains NaN or Inf")
        if spec.pool > 1:
            arr = arr[: arr.shape[0] // spec.pool * spec.pool].reshape(-1, spec.pool, spec.dim).mean(1)
        out[spec.name] = arr
    lengths = {a.shape[0] for a in out.values()}
    if len(lengths) > 1:
        t = min(lengths)
        if counts is not None:
            counts["videos_trimmed_to_shortest_feature"] += 1
            counts["feature_rows_trimmed"] += sum(a.shape[0] - t for a in out.values())
        out = {k: a[:t] for k, a in out.items()}
    return out
