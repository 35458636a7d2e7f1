"""A third dataset, "toy", registered from outside the package: one spec and nothing else.

Importing this module registers it; `python tests/toy_dataset.py ARGS` runs `avvp-dist ARGS`
with it registered (how a user's own dataset plugs in). Format: `toy.json` =
{vid: {"split": ..., "labels": [...]}}, features `<name>/<vid>.npy` with 6 rows of 2 s.
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from avvp_dist.data.annotations import Annotations, VideoRecord
from avvp_dist.data.datasets import DataSpec
from avvp_dist.data.features import FeatureSpec
from avvp_dist.data.timegrid import TimeGrid
from avvp_dist.eval.datasets import DatasetSpec, register_dataset

CLASSES = ("beep", "flash", "hum")
ROWS, SECONDS_PER_ROW = 6, 2.0
FEATURES = (FeatureSpec("mic", "audio", 4, steps=ROWS, file="{name}/{vid}.npy"),
            FeatureSpec("cam", "visual", 3, steps=ROWS, file="{name}/{vid}.npy"))


def read_toy(root: Path) -> Annotations:
    doc = json.loads((Path(root) / "toy.json").read_text())
    splits: dict[str, list[VideoRecord]] = {"train": [], "val": [], "test": []}
    for vid, entry in doc.items():
        splits[entry["split"]].append(VideoRecord(vid, tuple(entry["labels"]), ROWS * SECONDS_PER_ROW))
    return Annotations("toy", list(CLASSES), splits, Counter())


def video_f1(pred: dict, classes: list[str], proto, class_thresholds=None) -> dict:
    """Video-level F1 of `p >= 0.5` against the weak labels, pooled over videos and classes."""
    y = np.array([[c in m["labels"] for c in classes] for m in pred["meta"]])
    hit = pred["p"] >= proto.video_threshold
    tp, wrong = (hit & y).sum(), (hit != y).sum()
    return {"metrics": {"video_f1": 100.0 * 2 * tp / max(2 * tp + wrong, 1)}}


def tables(reports: dict, classes: list[str]) -> str:
    return "\n".join(f"{name:<10} video F1 {r['metrics']['video_f1']:6.2f}" for name, r in reports.items())


def timeline(rep: dict, pred: dict, i: int, classes: list[str]):
    P = pred["P"][i]  # (T, 2, C)
    on = (P >= 0.5).transpose(1, 2, 0)
    truth = np.array([[c in pred["meta"][i]["labels"]] * len(P) for c in classes])
    return truth, truth, on[0], on[1]


def events(P, p, p_a, p_v, classes, proto, grid) -> list[dict]:
    """A whole-video audio-visual event per class with p >= the video threshold."""
    return [{"class": classes[c], "modality": "audio-visual", "start": 0.0, "end": float(grid.seconds(len(P))),
             "score": round(float(p[c]), 4)} for c in np.flatnonzero(p >= proto.video_threshold)]


TOY = register_dataset(DatasetSpec(DataSpec("toy", CLASSES, read_toy, FEATURES, TimeGrid(SECONDS_PER_ROW)),
                                   "video_f1", video_f1, tables, timeline, events))


def write_raw(root: Path, counts=(("train", 64), ("val", 12), ("test", 12)), seed: int = 0) -> Path:
    """A raw toy folder: class c adds a bump to feature c of both modalities in every row."""
    rng = np.random.default_rng(seed)
    doc = {}
    for split, n in counts:
        for i in range(n):
            vid = f"{split}-{i:03d}"
            labels = [c for c in CLASSES if rng.random() < 0.4] or [CLASSES[i % 3]]
            doc[vid] = {"split": split, "labels": labels}
            for spec in FEATURES:
                x = rng.normal(size=(ROWS, spec.dim)).astype(np.float32)
                for c in labels:
                    x[:, CLASSES.index(c)] += 3.0
                (root / "features" / spec.name).mkdir(parents=True, exist_ok=True)
                np.save(root / "features" / spec.name / f"{vid}.npy", x)
    (root / "toy.json").write_text(json.dumps(doc))
    return root


if __name__ == "__main__":
    from avvp_dist.cli import main

    sys.exit(main(sys.argv[1:]))
