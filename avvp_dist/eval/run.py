"""`avvp-dist eval`: score model checkpoints on a split, write metrics.json, tables and plots."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from avvp_dist.data.annotations import Event, segment_labels
from avvp_dist.data.config import DataConfig
from avvp_dist.data.stream import ShardStream
from avvp_dist.eval.inference import gather_predictions, predict
from avvp_dist.eval.llp_metrics import METRIC_NAMES
from avvp_dist.eval.plots import plot_timeline
from avvp_dist.eval.protocol import calibrate_thresholds, protocol
from avvp_dist.eval.report import llp_ground_truth, llp_report, unav_report
from avvp_dist.eval.unav_metrics import HOP_S
from avvp_dist.model.checkpoint import load_model

LLP_HEAD = ["A", "V", "AV", "Type", "Event"]


def format_llp_table(results: dict[str, dict]) -> str:
    """Rows: models; columns: segment-level then event-level A/V/AV/Type/Event."""
    head = f"{'model':<10} | " + " ".join(f"{h:>6}" for h in LLP_HEAD) + " | " + " ".join(f"{h:>6}" for h in LLP_HEAD)
    lines = [f"{'':<10} | {'segment-level':^34} | {'event-level':^34}", head, "-" * len(head)]
    for name, r in results.items():
        m = r["metrics"]
        lines.append(f"{name:<10} | " + " ".join(f"{m[k]:6.2f}" for k in METRIC_NAMES[:5]) + " | "
                     + " ".join(f"{m[k]:6.2f}" for k in METRIC_NAMES[5:]))
    return "\n".join(lines)


def format_unav_table(results: dict[str, dict]) -> str:
    keys = [f"map@{t:.1f}" for t in (0.1, 0.3, 0.5, 0.7, 0.9)] + ["map_mean", "seg_av", "evt_av"]
    head = f"{'model':<10} | " + " ".join(f"{k:>9}" for k in keys)
    return "\n".join([head, "-" * len(head)] + [f"{n:<10} | " + " ".join(f"{r['metrics'][k]:9.2f}" for k in keys)
                                                for n, r in results.items()])


def format_per_class(per_class: dict, classes: list[str]) -> str:
    lines = [f"{'class':<26} {'A':>6} {'V':>6} {'AV':>6}"]
    for c in classes:
        vals = [per_class[m][c] for m in ("a", "v", "av")]
        lines.append(f"{c:<26} " + " ".join("     -" if v is None else f"{v:6.1f}" for v in vals))
    return "\n".join(lines)


def evaluate(checkpoints: dict[str, str], shards: str | Path, data: DataConfig, split: str = "test",
             protocol_name: str = "han", rank: int = 0, world_size: int = 1, calibrate_split: str | None = None,
             model_override=None) -> dict:
    """Metrics of each checkpoint (name -> path) on `shards/<split>`, inference sharded over ranks.

    `model_override` (name -> model) scores in-memory models instead (the trainer's periodic eval).
    Returns {name: report} with `metrics`, `per_class` (LLP) and the gathered predictions.
    """
    proto = protocol(protocol_name)
    stream = ShardStream(Path(shards) / split, data, rank, world_size, train=False)
    classes, dataset = stream.manifest.classes, stream.manifest.dataset
    models = dict(model_override or {})
    for name, path in checkpoints.items():
        model, meta = load_model(path)
        if meta["classes"] != classes:
            raise ValueError(f"{path}: its {len(meta['classes'])} classes differ from the shards' {len(classes)}")
        models[name] = model
    results = {}
    for name, model in models.items():
        pred = gather_predictions(predict(model, stream))
        if dataset == "llp":
            thresholds = None
            if calibrate_split:
                val = gather_predictions(predict(model, ShardStream(Path(shards) / calibrate_split, data, rank,
                                                                     world_size, train=False)))
                ga, gv = llp_ground_truth(val, classes)
                thresholds = calibrate_thresholds(np.stack(val["P"]), val["p"], val["p_a"], val["p_v"], ga, gv, proto)
            rep = llp_report(pred, classes, proto, thresholds)
            if thresholds is not None:
                rep["class_thresholds"] = dict(zip(classes, map(float, thresholds)))
        else:
            rep = unav_report(pred, classes, proto)
        rep["predictions"] = pred
        results[name] = rep
    return {"dataset": dataset, "classes": classes, "split": split, "protocol": protocol_name, "models": results}


def write_outputs(result: dict, out_dir: str | Path, plots: int = 0) -> Path:
    """metrics.json, the printed tables, and `plots` timeline PNGs per model."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc = {k: v for k, v in result.items() if k != "models"}
    doc["models"] = {n: {k: v for k, v in r.items() if k in ("metrics", "per_class", "class_thresholds")}
                     for n, r in result["models"].items()}
    (out / "metrics.json").write_text(json.dumps(doc, indent=1))
    classes, llp = result["classes"], result["dataset"] == "llp"
    for name, rep in result["models"].items():
        pred = rep["predictions"]
        for i in range(min(plots, len(pred["keys"]))):
            key = pred["keys"][i]
            if llp:
                pa, pv, ga, gv = (x[i] for x in rep["binary"])
                step = 1.0
            else:
                P, p = pred["P"][i], pred["p"][i]
                pos = ((P >= 0.5) & (p >= 0.5)[None, None, :]).transpose(1, 2, 0)  # (2, C, T)
                pa, pv = pos[0], pos[1]
                gt = segment_labels([Event(*e) for e in pred["meta"][i]["events"]], classes, len(P), HOP_S)
                ga, gv, step = gt[0], gt[1], HOP_S
            plot_timeline(out / "plots" / name / f"{key}.png", f"{key} ({name})", classes, ga, gv, pa, pv, step)
    return out / "metrics.json"


def print_report(result: dict) -> None:
    models = result["models"]
    print(f"{result['dataset']} {result['split']} ({result['protocol']} protocol, "
          f"{len(next(iter(models.values()))['predictions']['keys'])} videos)")
    print(format_llp_table(models) if result["dataset"] == "llp" else format_unav_table(models))
    if result["dataset"] == "llp":
        for name, rep in models.items():
            print(f"\nper-class segment-level F1 ({name})")
            print(format_per_class(rep["per_class"], result["classes"]))
