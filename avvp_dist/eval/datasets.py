"""Per-dataset specs: reading (the data layer's `DataSpec`) and evaluating one dataset.

Nothing in eval, engine or the CLI compares dataset names: they look the spec up by the
name a shard manifest or a model checkpoint records. A third dataset is one
`register_dataset(DatasetSpec(...))`, made of the functions below for its own format.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from avvp_dist.data import datasets as data_datasets
from avvp_dist.data.datasets import DataSpec, register_data
from avvp_dist.eval.events import llp_events, unav_events
from avvp_dist.eval.report import llp_calibration, llp_report, llp_timeline, unav_report, unav_timeline
from avvp_dist.eval.tables import format_unav_table, llp_tables


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset from raw folder to printed report.

    data: how its raw folder is read and what its features look like.
    select_metric: the validation metric the best checkpoint is chosen by (higher is better).
    report(pred, classes, protocol, class_thresholds) -> {"metrics": {...}, ...}: the split's
        metrics from gathered predictions (`eval.inference.gather_predictions`).
    tables(reports, classes) -> str: the printed tables of several models' reports.
    timeline(report, pred, i, classes) -> (gt_a, gt_v, pred_a, pred_v), each (C, T): a plot.
    events(P, p, p_a, p_v, classes, protocol, seconds_per_row) -> [{class, modality, start,
        end, score}]: one video's parse.
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
        raise ValueError(f"no evaluation spec for dataset {name!r}; registered: {sorted(_SPECS)}")
    return _SPECS[name]


LLP = register_dataset(DatasetSpec(data_datasets.LLP, "seg_type", llp_report, llp_tables, llp_timeline, llp_events,
                                   llp_calibration))
UNAV100 = register_dataset(DatasetSpec(data_datasets.UNAV100, "map_mean", unav_report, format_unav_table,
                                       unav_timeline, unav_events))
