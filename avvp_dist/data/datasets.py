"""The data layer's dataset registry: what it needs to know of a dataset, looked up by name.

The data layer never compares dataset names: it asks `data_spec(name)`. The datasets that
come with the package live in `avvp_dist/datasets/` (one module each) and are loaded on the
first lookup; a dataset of one's own is registered with `eval.datasets.register_dataset`,
which hands its `DataSpec` to this registry.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping

from avvp_dist.data.annotations import Annotations
from avvp_dist.data.features import FeatureSet, FeatureSpec
from avvp_dist.data.timegrid import TimeGrid

if TYPE_CHECKING:
    from avvp_dist.data.synth import SynthFormat

BUILTIN = "avvp_dist.datasets"  # the package whose modules register llp and unav100 when imported


@dataclass(frozen=True)
class DataSpec:
    """What the data layer needs to know of one dataset.

    read_annotations: the annotation files under a raw dataset folder -> `Annotations`.
    feature_sets: the published feature releases' layouts (`data.feature_set`; the first is
    the default; `data.features` overrides the specs); a dataset with one release may give
    its `FeatureSpec`s instead, which become the release "default".
    grid: where the shard rows sit in time (`data.timegrid`: LLP 1 s segments from 0 s; UnAV-100
    0.32 s rows centred at 0.32 t + 0.48 s, as its official code has them).
    synth: how the synthetic generator writes the dataset's on-disk format (None: it cannot).
    presets: {preset name: nested values} the preset sets on this dataset beyond its common
    part (`config.presets`).
    """

    name: str
    classes: tuple[str, ...]
    read_annotations: Callable[[Path], Annotations]
    feature_sets: tuple[FeatureSet, ...]
    grid: TimeGrid
    synth: SynthFormat | None = None
    presets: Mapping[str, dict] = field(default_factory=dict)

    def __post_init__(self):
        if all(isinstance(f, FeatureSpec) for f in self.feature_sets):
            object.__setattr__(self, "feature_sets", (FeatureSet("default", tuple(self.feature_sets)),))

    @property
    def seconds_per_row(self) -> float:
        """Duration of one shard row."""
        return self.grid.hop_s

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


def load_builtin() -> None:
    """Registers the datasets that come with the package (idempotent: a module imports once)."""
    importlib.import_module(BUILTIN)


def data_spec(name: str) -> DataSpec:
    if name not in _SPECS:
        load_builtin()
    if name not in _SPECS:
        raise ValueError(f"unknown dataset {name!r}; registered: {sorted(_SPECS)}")
    return _SPECS[name]
