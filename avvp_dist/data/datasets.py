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
from avvp_dist.data.features import FeatureSet, FeatureSpec
from avvp_dist.data.llp import (LLP_CLASSES, LLP_FEATURES, LLP_LABELS, VALOR_FEATURES, VALOR_HAN_FEATURES, VALOR_LABELS,
                                read_llp_annotations)
from avvp_dist.data.unav100 import (UNAV100_CLASSES, UNAV100_FEATURES, UNAV100_LABELS, UNAV_FEATURE_HOP_S,
                                    read_unav100_annotations)


@dataclass(frozen=True)
class DataSpec:
    """What the data layer needs to know of one dataset.

    read_annotations: the annotation files under a raw dataset folder -> `Annotations`.
    feature_sets: the published feature releases' layouts (`data.feature_set`; the first is
    the default; `data.features` overrides the specs); a dataset with one release may give
    its `FeatureSpec`s instead, which become the release "default".
    seconds_per_row: duration of one shard row (LLP: 1 s segments; UnAV-100: 0.32 s).
    """

    name: str
    classes: tuple[str, ...]
    read_annotations: Callable[[Path], Annotations]
    feature_sets: tuple[FeatureSet, ...]
    seconds_per_row: float

    def __post_init__(self):
        if all(isinstance(f, FeatureSpec) for f in self.feature_sets):
            object.__setattr__(self, "feature_sets", (FeatureSet("default", tuple(self.feature_sets)),))

    @property
    def features(self) -> tuple[FeatureSpec, ...]:
        """The default release's features."""
        return self.feature_sets[0].features

    def feature_set(self, name: str = "") -> FeatureSet:
        """The release `name` ("" = the default); a `ValueError` lists the known ones."""
        sets = {s.name: s for s in self.feature_sets}
        if name and name not in sets:
            raise ValueError(f"dataset {self.name!r} has no feature set {name!r}; known: {sorted(sets)}")
        return sets[name] if name else self.feature_sets[0]

    def default_features(self, feature_set: str = "") -> list[FeatureSpec]:
        """Fresh copies of a release's layout (callers may change their dims)."""
        return [replace(f) for f in self.feature_set(feature_set).features]


_SPECS: dict[str, DataSpec] = {}


def register_data(spec: DataSpec) -> DataSpec:
    _SPECS[spec.name] = spec
    return spec


def data_spec(name: str) -> DataSpec:
    if name not in _SPECS:
        raise ValueError(f"unknown dataset {name!r}; registered: {sorted(_SPECS)}")
    return _SPECS[name]


LLP = register_data(DataSpec("llp", tuple(LLP_CLASSES), read_llp_annotations,
                             (FeatureSet("han", LLP_FEATURES, LLP_LABELS),  # HAN's release: VGGish, ResNet-152, R(2+1)D
                              FeatureSet("valor", VALOR_FEATURES, VALOR_LABELS, folder=""),  # CLAP, CLIP, R(2+1)D
                              FeatureSet("valor_han", VALOR_HAN_FEATURES, VALOR_LABELS, folder="")), 1.0))
UNAV100 = register_data(DataSpec("unav100", tuple(UNAV100_CLASSES), read_unav100_annotations,
                                 (FeatureSet("unav100", UNAV100_FEATURES, UNAV100_LABELS),), UNAV_FEATURE_HOP_S))
