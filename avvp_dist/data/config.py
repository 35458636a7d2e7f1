"""DataConfig: where the data lives, which features, how shards are written and streamed."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from avvp_dist.data.datasets import data_spec
from avvp_dist.data.features import FeatureSpec
from avvp_dist.data.location import check_root


@dataclass
class DataConfig:
    """Data: raw folder -> shards -> stream."""

    dataset: str = "llp"  # a registered dataset (`data.datasets`): llp, unav100
    root: str = ""  # raw dataset folder: annotation files at top level, features below
    features_dir: str = ""  # default: <root>/features
    # shard root, one subfolder per split; default <run_dir>/shards. A local folder, or a URL root
    # read with webdataset's opener: http(s)://... (needs curl) or pipe:CMD with {} for the path
    shards: str = ""
    # a published feature release of the dataset ("" = its default): llp: han (VGGish, ResNet-152,
    # R(2+1)D under features/), valor (CLAP, CLIP ViT-L/14, R(2+1)D in VALOR's data/ layout) or
    # valor_han (HAN's three in VALOR's layout, data/feats/); both valor sets carry VALOR's labels
    feature_set: str = ""
    features: Optional[list[FeatureSpec]] = None  # None: the feature set's
    # also shard the feature set's segment-level labels (VALOR's CLIP / CLAP pseudo-labels), which
    # method.pseudo.source=external|both trains with
    external_labels: bool = False
    id_chars: int = 11  # LLP feature files are named by the first 11 characters of the id
    shard_dtype: Literal["float16", "float32"] = "float16"  # halves shard size; features are smooth
    samples_per_shard: int = 256  # ~5 MB LLP shards in fp16: large sequential reads, many shards
    batch_size: int = 16  # per rank
    num_workers: int = 2  # DataLoader workers per rank
    piece_size: int = 32  # samples per contiguous (shard, range) piece the epoch plan shuffles
    shuffle_window: int = 4  # batches mixed together within a worker after reading
    on_error: Literal["raise", "skip"] = "raise"  # bad samples: error, or counted skip
    verify_checksums: bool = True  # each sample's sha256 against the manifest, as it is read

    def __post_init__(self):
        data_spec(self.dataset).feature_set(self.feature_set)  # unknown names: an error that lists the known ones
        check_root(self.shards)  # s3:// and the like: the pipe: form that reads them
        for name in ("id_chars", "samples_per_shard", "batch_size", "piece_size", "shuffle_window"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")

    def feature_specs(self) -> list[FeatureSpec]:
        return self.features if self.features is not None else data_spec(self.dataset).default_features(
            self.feature_set)

    def label_specs(self) -> list[FeatureSpec]:
        """The external segment labels to shard (none unless `external_labels`)."""
        return list(data_spec(self.dataset).feature_set(self.feature_set).labels) if self.external_labels else []

    @property
    def features_folder(self) -> str:
        """Where the feature set's `file` templates start, relative to `root`."""
        return data_spec(self.dataset).feature_set(self.feature_set).folder
