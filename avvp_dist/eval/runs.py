"""Runs of True: the events of binary segment rows, the one helper every metric, parse and plot uses."""
from __future__ import annotations

import numpy as np


def run_bounds(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Runs of binary rows (M, T) as (starts, ends) (M, R) int32, R = the most runs in a row,
    padded with empty runs (start = end = 0); runs are [start, end) in rows."""
    M, T = x.shape
    pad = np.zeros((M, 1), np.int8)
    d = np.diff(np.concatenate([pad, x.astype(np.int8), pad], axis=1), axis=1)
    rows_s, at_s = np.nonzero(d == 1)
    rows_e, at_e = np.nonzero(d == -1)
    k = np.arange(len(rows_s)) - np.searchsorted(rows_s, rows_s)  # index of the run within its row
    starts = np.zeros((M, int(k.max(initial=-1)) + 1), np.int32)
    ends = np.zeros_like(starts)
    starts[rows_s, k], ends[rows_e, k] = at_s, at_e
    return starts, ends


def runs(row: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True in one row (T,), in order."""
    starts, ends = run_bounds(np.asarray(row).reshape(1, -1))
    return list(zip(starts[0].tolist(), ends[0].tolist()))
