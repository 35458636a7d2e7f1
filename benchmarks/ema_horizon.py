"""The EMA horizon by evidence: the teacher's masks against the student's own, per decay, on tuning seeds.

    python benchmarks/ema_horizon.py                                   # ours, LLP format, seed 0, four decays
    python benchmarks/ema_horizon.py --dataset unav100 --seeds 10 --decays 0.99,0.999
    python benchmarks/ema_horizon.py --decays 0.99,0.999 --no-warmup     # the decay from the first update

With the warm-up (`method.teacher.warmup`, the default), update k uses min(decay, (1 + k) /
(10 + k)): the horizon in force is about (10 + k) / 9 steps until it reaches 1 / (1 - decay)
(at k = 890 for 0.99, 8,990 for 0.999), so in runs of a few thousand steps the decays differ
only late; `--no-warmup` measures the decay alone.

For each decay (horizon 1 / (1 - decay) optimizer steps) a run of the preset on the same data
(benchmarks/heldout2.py's sizes and data, the seed a tuning seed: 0-2 or 10-12), and at every
validation the precision and F1 of the teacher's pseudo positives minus the student's own by
the same rule (`val/masks`: teacher_*_precision - student_*_precision, gain_f1_*), with the
validation score. Prints a table per decay: the gain averaged over the validations after the
ramp, at the best step, and the test score of the selected model. Writes
`<out>/<dataset>-seeds<...>.json`.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from heldout2 import DATA, SIZES, make_data  # benchmarks/ is on sys.path
from ablation import cli

REPO = Path(__file__).resolve().parents[1]
TUNING_SEEDS = {0, 1, 2, 10, 11, 12}


def run(ds: str, seed: int, preset: str, decay: float, warmup: bool, out: Path, extra: list[str]) -> dict:
    folder, common = make_data(ds, seed, out)
    name = f"{preset}_decay{decay}" + ("" if warmup else "_nowarmup")
    run_dir = folder / name
    if not (run_dir / "eval_test" / "metrics.json").exists():
        cli("train", *common, f"run_dir={run_dir}", f"preset={preset}", f"method.teacher.decay={decay}",
            f"method.teacher.warmup={str(warmup).lower()}", *SIZES, *DATA[ds][1], *extra, log=folder / f"{name}.log")
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    masks = [r for r in records if r["kind"] == "val/masks"]
    key = DATA[ds][2][0]
    val = {r["step"]: r[key] for r in records if r["kind"] == "val/teacher"}
    best = max(val, key=val.get)
    test = json.loads((run_dir / "eval_test" / "metrics.json").read_text())["models"]

    def gain(r: dict, what: str) -> float:
        return statistics.mean(r[f"teacher_{m}_{what}"] - r[f"student_{m}_{what}"] for m in ("audio", "visual"))

    return {"decay": decay, "warmup": warmup, "horizon_steps": round(1 / (1 - decay)), "seed": seed,
            "precision_gain": [(r["step"], gain(r, "precision")) for r in masks],
            "f1_gain": [(r["step"], gain(r, "f1")) for r in masks], "val": sorted(val.items()), "best_step": best,
            "test_teacher": test["teacher"]["metrics"][key], "test_student": test["student"]["metrics"][key]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="llp")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--preset", default="ours")
    ap.add_argument("--decays", default="0.99,0.995,0.999,0.9995")
    ap.add_argument("--no-warmup", action="store_true", help="method.teacher.warmup=false: the decay from the first update")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "ema_horizon")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    if not set(seeds) <= TUNING_SEEDS:
        raise SystemExit(f"seeds {seeds}: the horizon is chosen on tuning seeds only ({sorted(TUNING_SEEDS)})")
    rows = [run(args.dataset, s, args.preset, float(d), not args.no_warmup, args.out, args.overrides)
            for s in seeds for d in args.decays.split(",")]
    print(f"\n{args.preset}, {args.dataset}, seeds {seeds}: teacher minus student (masks against the validation truth)")
    print("| decay | warm-up | horizon (steps) | seed | precision gain, mean over validations | F1 gain, mean | "
          "F1 gain at best step | best val step | test teacher | test student |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        at_best = dict(r["f1_gain"]).get(r["best_step"], float("nan"))
        pg = [g for _, g in r["precision_gain"] if g == g]
        fg = [g for _, g in r["f1_gain"] if g == g]
        print(f"| {r['decay']} | {'yes' if r['warmup'] else 'no'} | {r['horizon_steps']} | {r['seed']} | {statistics.mean(pg) if pg else float('nan'):+.4f} | "
              f"{statistics.mean(fg) if fg else float('nan'):+.4f} | {at_best:+.4f} | {r['best_step']} | "
              f"{r['test_teacher']:.2f} | {r['test_student']:.2f} |")
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"{args.dataset}-seeds{args.seeds.replace(',', '_')}-{args.decays.replace(',', '_')}" + ("-nowarmup" if args.no_warmup else "")
    (args.out / f"{name}.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
