"""`avvp-dist eval`: score model checkpoints on a split, write metrics.json, tables and plots."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from avvp_dist.data.config import DataConfig
from avvp_dist.data.location import Location, folder
from avvp_dist.data.stream import ShardStream
from avvp_dist.eval.datasets import dataset_spec
from avvp_dist.eval.detection import DetectionConfig
from avvp_dist.eval.inference import gather_predictions, predict
from avvp_dist.eval.plots import plot_timeline
from avvp_dist.eval.protocol import protocol
from avvp_dist.model.checkpoint import check_fits_data, load_model


def evaluate(checkpoints: dict[str, str], shards: Location, data: DataConfig, split: str = "test",
             protocol_name: str = "han", rank: int = 0, world_size: int = 1, calibrate_split: str | None = None,
             model_override=None, detection: DetectionConfig | None = None) -> dict:
    """Metrics of each checkpoint (name -> path) on `shards/<split>`, inference sharded over ranks.

    `model_override` (name -> model) scores in-memory models instead (the trainer's periodic eval).
    `detection` replaces the protocol's default detection settings (UnAV-100's mAP).
    Returns {name: report} with `metrics`, `per_class` (LLP) and the gathered predictions.
    """
    proto = protocol(protocol_name)
    if detection is not None:
        proto = replace(proto, detection=detection)
    stream = ShardStream(folder(shards, split), data, rank, world_size, train=False)
    classes, dataset = stream.manifest.classes, stream.manifest.dataset
    spec = dataset_spec(dataset)
    if calibrate_split and spec.calibration is None:
        raise ValueError(f"{dataset}: its protocol has no per-class threshold calibration")
    models = dict(model_override or {})
    trained = {}  # what each checkpoint trained: its preset and the values changed from it
    for name, path in checkpoints.items():
        model, meta = load_model(path)
        check_fits_data(path, meta, classes, stream.manifest.features)
        models[name] = model
        extra = meta.get("extra") or {}
        trained[name] = {"preset": extra.get("preset", "unrecorded"),
                         "preset_overrides": extra.get("preset_overrides", {})}
    results = {}
    for name, model in models.items():
        pred = gather_predictions(predict(model, stream))
        thresholds = None
        if calibrate_split:
            val = gather_predictions(predict(model, ShardStream(folder(shards, calibrate_split), data, rank,
                                                                 world_size, train=False)))
            thresholds = spec.calibration(val, classes, proto)
        rep = spec.report(pred, classes, proto, thresholds)
        if thresholds is not None:
            rep["class_thresholds"] = dict(zip(classes, map(float, thresholds)))
        rep["predictions"] = pred
        if name in trained:
            rep["trained"] = trained[name]
        results[name] = rep
    return {"dataset": dataset, "classes": classes, "split": split, "protocol": protocol_name, "models": results}


def write_outputs(result: dict, out_dir: str | Path, plots: int = 0) -> Path:
    """metrics.json, the printed tables, and `plots` timeline PNGs per model."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc = {k: v for k, v in result.items() if k != "models"}
    doc["models"] = {n: {k: v for k, v in r.items() if k in ("metrics", "per_class", "class_thresholds", "trained")}
                     for n, r in result["models"].items()}
    (out / "metrics.json").write_text(json.dumps(doc, indent=1))
    classes, spec = result["classes"], dataset_spec(result["dataset"])
    for name, rep in result["models"].items():
        pred = rep["predictions"]
        for i in range(min(plots, len(pred["keys"]))):
            key = pred["keys"][i]
            ga, gv, pa, pv = spec.timeline(rep, pred, i, classes)
            plot_timeline(out / "plots" / name / f"{key.replace('/', '%2F')}.png", f"{key} ({name})", classes, ga, gv, pa, pv,
                          spec.data.grid)
    return out / "metrics.json"


def print_report(result: dict) -> None:
    models = result["models"]
    print(f"{result['dataset']} {result['split']} ({result['protocol']} protocol, "
          f"{len(next(iter(models.values()))['predictions']['keys'])} videos)")
    for name, rep in models.items():
        if "trained" in rep:
            changed = rep["trained"]["preset_overrides"]
            print(f"{name}: trained with preset {rep['trained']['preset']}"
                  + (" with " + ", ".join(f"{k}={v}" for k, v in changed.items()) if changed else ""))
    print(dataset_spec(result["dataset"]).tables(models, result["classes"]))
    if result.get("mask_quality"):
        print(mask_quality_table(result["mask_quality"]))


def mask_quality_table(q: dict) -> str:
    """The teacher's pseudo positives and CMA pairs against the truth, beside the student's own
    by the same rule, then per class (`engine.telemetry.selection_quality`'s result)."""
    def f(x):
        return "  -  " if x is None or x != x else f"{x:5.3f}"

    t, s = q["teacher"], q["student"]
    lines = ["masks against the truth (the training rule on the teacher's and on the student's probabilities):",
             f"{'':8} {'base rate':>9} | {'teacher P':>9} {'R':>6} {'F1':>6} {'selected':>9} | {'student P':>9} {'R':>6} "
             f"{'F1':>6} | gain F1"]
    for m in ("audio", "visual"):
        lines.append(f"{m:8} {f(t[m + '_base_rate']):>9} | {f(t[m + '_precision']):>9} {f(t[m + '_recall']):>6} "
                     f"{f(t[m + '_f1']):>6} {t[m + '_selected']:9.0f} | {f(s[m + '_precision']):>9} "
                     f"{f(s[m + '_recall']):>6} {f(s[m + '_f1']):>6} | {f(q['gain_f1'][m])}")
    lines.append(f"CMA pairs: precision teacher {f(t['pair_precision'])} ({t['pairs']:.0f} pairs), "
                 f"student {f(s['pair_precision'])} ({s['pairs']:.0f}); base rate {f(t['pair_base_rate'])}")
    lines.append(f"{'class (teacher)':24} {'audio P':>7} {'R':>6} {'visual P':>8} {'R':>6} {'pairs P':>7}")
    for name, r in q["per_class"].items():
        lines.append(f"{name[:24]:24} {f(r['audio_precision']):>7} {f(r['audio_recall']):>6} "
                     f"{f(r['visual_precision']):>8} {f(r['visual_recall']):>6} {f(r['pair_precision']):>7}")
    return "\n".join(lines)
