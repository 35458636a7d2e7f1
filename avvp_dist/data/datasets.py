"""Per-dataset data specs: how a dataset's raw folder is read and what its features look like.

The data layer never compares dataset names: it asks `data_spec(name)`. A new dataset is one
`DataSpec` (and, for evaluation, the `eval.datasets.DatasetSpec` that carries it), registered
under its name; nothing else changes.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from avvp_dist.data.annotations import Annotations
from avvp_dist.data.features import FeatureSpec
from avvp_dist.data.llp import LLP_CLASSES, LLP_FEATURES, read_llp_annotations
from avvp_dist.data.unav100 import UNAV100_CLASSES, UNAV100_FEATURES, UNAV_FEATURE_HOP_S, read_unav100_annotations


@dataclass(frozen=True)
class DataSpec:
    """What the data layer needs to know of one dataset.

    read_annotations: the annotation files under a raw dataset folder -> `Annotations`.
    features: the published feature release's layout (overridable by `data.features`).
    seconds_per_row: duration of one shard row (LLP: 1 s segments; UnAV-100: 0.32 s).
    """

    name: str
    classes: tuple[str, ...]
    read_annotations: Callable[[Path], Annotations]
    features: tuple[FeatureSpec, ...]
    seconds_per_row: float

    def default_features(self) -> list[FeatureSpec]:
        """Fresh copies of the published layout (callers may change their dims)."""
        return [replace(f) for f in self.features]


_SPECS: dict[str, DataSpec] = {}


def register_data(spec: DataSpec) -> DataSpec:
    _SPECS[spec.name] = spec
    return spec


def data_spec(name: str) -> DataSpec:
    if name not in _SPECS:
        raise ValueError(f"unknown dataset {name!r}; registered: {sorted(_SPECS)}")
    return _SPECS[name]


LLP = register_data(DataSpec("llp", tuple(LLP_CLASSES), read_llp_annotations, LLP_FEATURES, 1.0))
UNAV100 = register_data(DataSpec("unav100", tuple(UNAV100_CLASSES), read_unav100_annotations, UNAV100_FEATURES,
                                 UNAV_FEATURE_HOP_S))
