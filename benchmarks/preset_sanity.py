"""A sanity check of the presets, not a study: each trains once on synthetic data of both formats.

    python benchmarks/preset_sanity.py                    # han, coleaf, paper; LLP and UnAV-100; seed 0
    python benchmarks/preset_sanity.py --presets paper --datasets llp --seed 0

Every preset trains with its own method and optimizer at sizes for 2 CPU cores (d 128,
2 heads, FFN 256, CMA embeddings 64; the same for all), on the same data: LLP-format data
in VALOR's layout (CLAP, CLIP, R(2+1)D, small dimensions: the features `paper` names) and
UnAV-100-format data (its own VGGish and I3D, standardised). It prints, per run, the
selected model's headline test metric (LLP: segment Type@AV; UnAV-100: mAP over tIoU
0.1-0.9), the validation score at the best step, and whether validation falls in the last
tenth of the run (the score at the end below the one a tenth before). The seed is a tuning
seed: no accuracy claim rests on this.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ablation import cli  # the avvp-dist call with its log and error (benchmarks/ is on sys.path)

REPO = Path(__file__).resolve().parents[1]
SIZES = ["model.d_model=128", "model.num_heads=2", "model.ffn_dim=256", "model.embed_dim=64", "data.num_workers=0",
         "train.threads=1", "train.plots=0", "train.checkpoint_every=0"]
DATA = {  # dataset -> (data overrides, training length and validation interval, headline metric)
    "llp": (["synth.dataset=llp", "data.dataset=llp", "synth.feature_set=valor", "data.feature_set=valor",
             "synth.num_train=1200", "synth.num_val=150", "synth.num_test=300", "data.batch_size=16",
             "synth.feature_dims={clap: 128, clip: 192, r2plus1d_18: 128}", "data.samples_per_shard=128"],
            ["train.max_steps=1000", "train.eval_every=100"], "seg_type"),
    "unav100": (["synth.dataset=unav100", "data.dataset=unav100", "synth.num_train=400", "synth.num_val=60",
                 "synth.num_test=100", "data.batch_size=8", "synth.feature_dims={rgb: 128, flow: 128, vggish: 64}",
                 "data.samples_per_shard=64", "model.standardize=true"],
                ["train.max_steps=900", "train.eval_every=90"], "map_mean"),
}


def run(ds: str, preset: str, seed: int, out: Path) -> dict:
    data, length, key = DATA[ds]
    folder = out / ds / f"seed{seed}"
    shards = folder / "shards"
    common = [f"seed={seed}", f"run_dir={folder}", f"synth.out={folder / 'raw'}", f"data.root={folder / 'raw'}",
              f"data.shards={shards}", *data]
    if not (shards / "test" / "manifest.json").exists():
        folder.mkdir(parents=True, exist_ok=True)
        cli("synth", *common, log=folder / "data.log")
        cli("shard", *common, log=folder / "data.log")
    run_dir = folder / preset
    if not (run_dir / "eval_test" / "metrics.json").exists():
        t0 = time.time()
        cli("train", *common, f"run_dir={run_dir}", f"preset={preset}", *SIZES, *length, log=folder / f"{preset}.log")
        print(f"  {ds} {preset}: {time.time() - t0:.0f} s", flush=True)
    test = json.loads((run_dir / "eval_test" / "metrics.json").read_text())["models"]
    model = "teacher" if "teacher" in test else "student"
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    val = [(r["step"], r[key]) for r in records if r["kind"] == f"val/{model}"]
    best = max(val, key=lambda v: v[1])
    last, tenth_before = val[-1], [v for v in val if v[0] <= 0.9 * val[-1][0]][-1]
    return {"dataset": ds, "preset": preset, "model": model, "metric": key, "test": test[model]["metrics"][key],
            "best_val": best[1], "best_step": best[0], "val_end": last[1], "val_tenth_before": tenth_before[1],
            "falls_in_last_tenth": last[1] < tenth_before[1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="han,coleaf,paper")
    ap.add_argument("--datasets", default="llp,unav100")
    ap.add_argument("--seed", type=int, default=0, help="a tuning seed (0-2, 10-12 are)")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "preset_sanity")
    args = ap.parse_args()
    rows = [run(ds, p, args.seed, args.out) for ds in args.datasets.split(",") for p in args.presets.split(",")]
    print(f"\n| dataset | preset | selected | test {'/'.join(sorted({r['metric'] for r in rows}))} | best val "
          "(step) | val a tenth before the end -> at the end | falls in the last tenth |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['dataset']} | {r['preset']} | {r['model']} | {r['test']:.1f} | {r['best_val']:.1f} "
              f"({r['best_step']}) | {r['val_tenth_before']:.1f} -> {r['val_end']:.1f} | "
              f"{'yes' if r['falls_in_last_tenth'] else 'no'} |")
    (args.out / f"{args.datasets.replace(',', '_')}-seed{args.seed}.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
