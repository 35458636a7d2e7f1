"""Inputs of the UnAV-100 metric golden file: ground truth and scored detections in the official
UnAV-100 formats, made from a seed (tests/golden/README.md says how the golden numbers were made).

    python tests/unav_golden_inputs.py OUT_DIR   # writes OUT_DIR/gt.json and OUT_DIR/pred.json

gt.json is an annotation file as `unav100_annotations.json` (`database` -> video -> subset
"test", duration, annotations with segment and label_id); pred.json is the official
evaluator's prediction file (`database` -> video -> [{segment, label_id, scores}]). Every class
has ground truth (the official evaluator renumbers classes by those present), scores are
distinct, some annotations repeat (the official evaluator drops repeats), and detections
range from near copies of an event to random spans, in videos with and without the class.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

SEED, NUM_VIDEOS, NUM_CLASSES = 20261206, 80, 12


def golden_inputs(seed: int = SEED) -> tuple[dict, dict]:
    """(gt database, prediction database) in the official formats."""
    rng = np.random.default_rng(seed)
    gt, pred = {}, {}
    for i in range(NUM_VIDEOS):
        vid = f"video_{i:03d}"
        duration = float(np.round(rng.uniform(8, 60), 3))
        events = []
        for _ in range(int(rng.integers(1, 5))):
            c = int(i % NUM_CLASSES) if not events else int(rng.integers(NUM_CLASSES))  # every class has GT
            s = float(rng.uniform(0, duration - 1))
            e = float(min(duration, s + rng.uniform(0.5, 20)))
            events.append({"segment": [round(s, 3), round(e, 3)], "label": f"class {c}", "label_id": c})
        if rng.random() < 0.1:
            events.append(dict(events[0]))  # a repeated annotation
        gt[vid] = {"subset": "test", "duration": duration, "annotations": events}
        dets = []
        for ev in events:
            for _ in range(int(rng.integers(0, 4))):  # near the event, at tIoUs from low to high
                s, e = ev["segment"]
                w = e - s
                a = s + rng.normal(0, 0.3 * w)
                b = e + rng.normal(0, 0.3 * w)
                a, b = sorted((max(0.0, a), min(duration, b)))
                if b - a > 0.05:
                    dets.append({"segment": [a, b], "label_id": ev["label_id"], "scores": float(rng.random())})
        for _ in range(int(rng.integers(0, 8))):  # anywhere, any class
            a = float(rng.uniform(0, duration - 0.5))
            dets.append({"segment": [a, float(min(duration, a + rng.uniform(0.3, 15)))],
                         "label_id": int(rng.integers(NUM_CLASSES)), "scores": float(rng.random())})
        pred[vid] = dets
    return gt, pred


def as_ours(gt: dict, pred: dict) -> tuple[dict, dict]:
    """The same in `eval.unav_metrics.unav_map`'s form: ({video: [(class, start, end, score)]},
    {video: [(class, start, end)]})."""
    preds = {v: [(d["label_id"], *d["segment"], d["scores"]) for d in dets] for v, dets in pred.items()}
    gts = {v: [(a["label_id"], *a["segment"]) for a in entry["annotations"]] for v, entry in gt.items()}
    return preds, gts


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    gt, pred = golden_inputs()
    (out / "gt.json").write_text(json.dumps({"version": "golden", "database": gt}))
    (out / "pred.json").write_text(json.dumps({"database": pred}))
    print(f"wrote {out}/gt.json and {out}/pred.json")
