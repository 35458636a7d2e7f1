"""Timeline plots of a video's parse: ground truth against prediction, audio and visual rows."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from avvp_dist.data.timegrid import TimeGrid
from avvp_dist.eval.runs import runs


def plot_timeline(path: str | Path, title: str, classes: list[str], gt_a: np.ndarray, gt_v: np.ndarray,
                  pred_a: np.ndarray, pred_v: np.ndarray, grid: TimeGrid = TimeGrid(1.0)) -> None:
    """One PNG: for audio and visual, a row per class present in GT or prediction; GT as a wide
    pale bar, prediction as a narrow dark bar on the same row, in seconds on the dataset's time
    grid. Arrays: (C, T) binary."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = sorted(set(np.flatnonzero(gt_a.any(1) | pred_a.any(1) | gt_v.any(1) | pred_v.any(1))))
    T = gt_a.shape[1]
    fig, axes = plt.subplots(2, 1, figsize=(9, 1.2 + 0.9 * max(1, len(shown))), sharex=True)
    for ax, name, gt, pred in ((axes[0], "audio", gt_a, pred_a), (axes[1], "visual", gt_v, pred_v)):
        for row, c in enumerate(shown):
            for a, b in runs(gt[c]):
                ax.broken_barh([(grid.seconds(a), (b - a) * grid.hop_s)], (row - 0.4, 0.8),
                               facecolors="#9ad0a0", label="ground truth")
            for a, b in runs(pred[c]):
                ax.broken_barh([(grid.seconds(a), (b - a) * grid.hop_s)], (row - 0.15, 0.3),
                               facecolors="#1f4e9c", label="prediction")
        ax.set_yticks(range(len(shown)), [classes[c] for c in shown] or [])
        ax.set_ylim(-0.6, max(1, len(shown)) - 0.4)
        ax.set_ylabel(name)
        ax.set_xlim(0, grid.seconds(T))
        ax.grid(axis="x", alpha=0.3)
    uniq = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            uniq.setdefault(label, handle)
    if uniq:
        fig.legend(uniq.values(), uniq.keys(), loc="upper right", ncol=2, fontsize=8)
    axes[1].set_xlabel("time (s)")
    fig.suptitle(title, x=0.02, ha="left", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
