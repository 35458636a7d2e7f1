"""The evaluation layer's dataset registry: reading (the data layer's `DataSpec`) and evaluating one dataset.

Nothing in eval, engine or the CLI compares dataset names: they look the spec up by the
name a shard manifest or a model checkpoint records. Each dataset is one module that calls
`register_dataset(DatasetSpec(...))` once (`avvp_dist/datasets/llp.py`, `unav100.py`; a
dataset of one's own: `tests/toy_dataset.py`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from avvp_dist.data.datasets import DataSpec, load_builtin, register_data


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset from raw folder to printed report.

    data: how its raw folder is read and what its features look like.
    select_metric: the validation metric the best checkpoint is chosen by (higher is better).
    report(pred, classes, protocol, class_thresholds) -> {"metrics": {...}, ...}: the split's
        metrics from gathered predictions (`eval.inference.gather_predictions`).
    tables(reports, classes) -> str: the printed tables of several models' reports.
    timeline(report, pred, i, classes) -> (gt_a, gt_v, pred_a, pred_v), each (C, T): a plot.
    events(P, p, p_a, p_v, classes, protocol, grid) -> [{class, modality, start, end, score}]:
        one video's parse, in seconds on the dataset's time grid (`data.grid`).
    calibration(val_pred, classes, protocol) -> (C,) per-class thresholds, or None if the
        dataset's protocol has none.
    """

    data: DataSpec
    select_metric: str
    report: Callable
    tables: Callable
    timeline: Callable
    events: Callable
    calibration: Callable | None = None

    @property
    def name(self) -> str:
        return self.data.name


_SPECS: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Makes `spec` known to every layer under `spec.name` (its data part to the data layer)."""
    register_data(spec.data)
    _SPECS[spec.name] = spec
    return spec


def dataset_spec(name: str) -> DatasetSpec:
    if name not in _SPECS:
        load_builtin()
    if name not in _SPECS:
        raise ValueError(f"no evaluation spec for dataset {name!r}; registered: {sorted(_SPECS)}")
    return _SPECS[name]

