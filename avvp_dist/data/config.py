"""DataConfig: where the data lives, which features, how shards are written and streamed."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional


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


LLP_FEATURES = [
    FeatureSpec("vggish", "audio", 128, steps=10),
    FeatureSpec("res152", "visual", 2048, steps=80, pool=8),
    FeatureSpec("r2plus1d_18", "visual", 512, steps=10),
]
UNAV100_FEATURES = [
    FeatureSpec("vggish", "audio", 128, file="{vid}_{name}.npy"),
    FeatureSpec("rgb", "visual", 1024, file="{vid}_{name}.npy"),
    FeatureSpec("flow", "visual", 1024, file="{vid}_{name}.npy"),
]


def default_features(dataset: str) -> list[FeatureSpec]:
    """The published feature release's layout for `dataset`."""
    return [FeatureSpec(**vars(f)) for f in (LLP_FEATURES if dataset == "llp" else UNAV100_FEATURES)]


@dataclass
class DataConfig:
    """Data: raw folder -> shards -> stream."""

    dataset: Literal["llp", "unav100"] = "llp"
    root: str = ""  # raw dataset folder: annotation files at top level, features below
    features_dir: str = ""  # default: <root>/features
    shards: str = ""  # shard folder, one subfolder per split; default <run_dir>/shards
    features: Optional[list[FeatureSpec]] = None  # None: the dataset's published release
    id_chars: int = 11  # LLP feature files are named by the first 11 characters of the id
    shard_dtype: Literal["float16", "float32"] = "float16"  # halves shard size; features are smooth
    samples_per_shard: int = 256  # ~5 MB LLP shards in fp16: large sequential reads, many shards
    batch_size: int = 16  # per rank
    num_workers: int = 2  # DataLoader workers per rank
    piece_size: int = 32  # samples per contiguous (shard, range) piece the epoch plan shuffles
    shuffle_window: int = 4  # batches mixed together within a worker after reading
    on_error: Literal["raise", "skip"] = "raise"  # bad samples: error, or counted skip
    verify_checksums: bool = True  # sha256 of every shard against the manifest at start

    def __post_init__(self):
        for name in ("id_chars", "samples_per_shard", "batch_size", "piece_size", "shuffle_window"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")

    def feature_specs(self) -> list[FeatureSpec]:
        return self.features if self.features is not None else default_features(self.dataset)
