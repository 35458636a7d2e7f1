"""The second held-out study: does the seed paper's method help, and why (the telemetry behind each row).

    python benchmarks/heldout2.py                              # LLP and UnAV-100 formats, the held-out seeds
    python benchmarks/heldout2.py --dataset llp --seeds 0 --variants han,paper train.max_steps=200   # a smoke run

Variants: `han`; `coleaf`; `paper` as published (its two parts on CoLeaF's backbone and
training); `paper_han`, the two parts on HAN's backbone with HAN's weak loss and optimizer
(so that it differs from `han` by the two parts and the embedding head only); `ours`. Every
preset keeps its own method and optimizer; the sizes are the same for all (d 128, 2 heads,
FFN 256, embeddings 64: 2 CPU cores), as are the data per seed (LLP-format data in VALOR's
layout with CLAP, CLIP and R(2+1)D at small dimensions, the features `paper` names;
UnAV-100-format data with its own features, standardised).

Per run: the selected model's test metrics (the teacher where there is one), and its
telemetry: the masks against the validation truth at the best validation step (the
teacher's and the student's own by the same rule: precision, recall, F1, CMA pair
precision, gain F1), the test split's (`mask_quality`), and the training log's shares,
saturation, spread and teacher gap averaged over the last tenth of the logged steps.
Length: each run's `han` validation curve must have flattened: its best validation score in
the last fifth of the run is at most `FLAT_POINTS` above the best before it; the tables say
per seed whether it held. Hypotheses, paired per seed on the selected models: (a) `paper`
beats its own base (`coleaf`; and `han` for `paper_han`) by more than 2 std of the paired
difference; (b) `ours` beats `paper`. The validation split's base rates (what a mask selecting
every labelled position scores) stand beside the masks' precision.

Probes, asked for by name on tuning seeds (which part of `paper` costs what):
`paper_our_masks` (ours' mask rule: per modality, a floor of 0.5, reliable negatives),
`paper_unfused` (a mask per modality only), `paper_no_cma`, `paper_our_ema` (decay 0.99 with
the warm-up), `paper_our_masks_ema` (both):

    python benchmarks/heldout2.py --dataset llp --seeds 0,1,2 --out runs/heldout2_probes \
        --variants coleaf,paper,paper_our_masks,paper_unfused,paper_no_cma,paper_our_ema,paper_our_masks_ema

Writes `<out>/heldout2_<dataset>.{md,json,png}`.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ablation import _stats, cli  # the avvp-dist call with its log; it puts the repository on sys.path

from avvp_dist.config.presets import HAN_OPTIMIZER

REPO = Path(__file__).resolve().parents[1]

# stated in docs/accuracy.md and committed before the first run; no run of any kind used them
HELD_OUT_SEEDS = "51,52,53"
FLAT_POINTS = 0.5  # han's best validation in the last fifth at most this far above the best before
SIZES = ["model.d_model=128", "model.num_heads=2", "model.ffn_dim=256", "model.embed_dim=64", "data.num_workers=0",
         "train.threads=1", "train.plots=0", "train.checkpoint_every=0", "train.log_every=25"]
_HAN_WEAK = ["method.weak.video_weight=1.0", "method.weak.audio_weight=1.0", "method.weak.visual_weight=1.0"]
VARIANTS = {
    "han": ("han", ["preset=han"]),
    "coleaf": ("coleaf", ["preset=coleaf"]),
    "paper": ("paper (as published: CoLeaF's backbone and training)", ["preset=paper"]),
    "paper_han": ("paper on HAN's backbone, weak loss and optimizer",
                  ["preset=paper", "model.backbone=han", *_HAN_WEAK] + [f"train.{k}={v}" for k, v in HAN_OPTIMIZER.items()]),
    "ours": ("ours", ["preset=ours"]),
}
STUDY = list(VARIANTS)  # the default; the probes below are asked for by name (part 6: the cause, on tuning seeds)
_OUR_MASKS = ["method.pseudo.tau_min=0.5", "method.pseudo.tau_low=0.3", "method.pseudo.absent_negatives=true",
              "method.pseudo.fuse=none"]
VARIANTS.update({
    "paper_our_masks": ("paper with ours' mask rule (per modality, floor 0.5, reliable negatives)",
                        ["preset=paper", *_OUR_MASKS]),
    "paper_unfused": ("paper with a mask per modality (not one from their mean)", ["preset=paper", "method.pseudo.fuse=none"]),
    "paper_no_cma": ("paper without its CMA loss", ["preset=paper", "method.cma.enabled=false"]),
    "paper_our_ema": ("paper with ours' EMA (decay 0.99 with the warm-up)",
                      ["preset=paper", "method.teacher.decay=0.99", "method.teacher.warmup=true"]),
    "paper_our_masks_ema": ("paper with ours' mask rule and EMA",
                            ["preset=paper", *_OUR_MASKS, "method.teacher.decay=0.99", "method.teacher.warmup=true"]),
})
HYPOTHESES = [("(a) paper beats coleaf", "paper", "coleaf"), ("(a) paper on HAN's backbone beats han", "paper_han", "han"),
              ("(b) ours beats paper", "ours", "paper"),
              # part 6, the probes (tuning seeds): which part of paper costs what
              ("probe: ours' mask rule in paper", "paper_our_masks", "paper"),
              ("probe: paper with ours' mask rule against coleaf", "paper_our_masks", "coleaf"),
              ("probe: a mask per modality in paper", "paper_unfused", "paper"),
              ("probe: paper without CMA", "paper_no_cma", "paper"),
              ("probe: ours' EMA in paper", "paper_our_ema", "paper"),
              ("probe: paper with ours' mask rule and EMA against coleaf", "paper_our_masks_ema", "coleaf")]
DATA = {  # dataset -> (data overrides, training length and validation interval, headline metrics)
    "llp": (["synth.dataset=llp", "data.dataset=llp", "synth.feature_set=valor", "data.feature_set=valor",
             "synth.num_train=1200", "synth.num_val=150", "synth.num_test=300", "data.batch_size=16",
             "synth.feature_dims={clap: 128, clip: 192, r2plus1d_18: 128}", "data.samples_per_shard=128"],
            ["train.max_steps=2000", "train.eval_every=100"], ["seg_type", "evt_type"]),
    "unav100": (["synth.dataset=unav100", "data.dataset=unav100", "synth.num_train=400", "synth.num_val=60",
                 "synth.num_test=100", "data.batch_size=8", "synth.feature_dims={rgb: 128, flow: 128, vggish: 64}",
                 "data.samples_per_shard=64", "model.standardize=true"],
                ["train.max_steps=3000", "train.eval_every=150"], ["map_mean", "map@0.5", "video_map"]),
}
TELEMETRY = ("mask_audio_pos", "mask_visual_pos", "mask_audio_ignored", "mask_visual_ignored", "teacher_gap",
             "student_audio_high", "student_visual_high", "teacher_audio_high", "teacher_visual_high",
             "student_audio_spread", "teacher_audio_spread", "cma_pairs", "ema_decay")


def make_data(ds: str, seed: int, out: Path) -> tuple[Path, list[str]]:
    folder = out / ds / f"seed{seed}"
    shards = folder / "shards"
    common = [f"seed={seed}", f"synth.out={folder / 'raw'}", f"data.root={folder / 'raw'}", f"data.shards={shards}",
              *DATA[ds][0]]
    if not (shards / "test" / "manifest.json").exists():
        folder.mkdir(parents=True, exist_ok=True)
        cli("synth", *common, f"run_dir={folder}", log=folder / "data.log")
        cli("shard", *common, f"run_dir={folder}", log=folder / "data.log")
    return folder, common


def _mean(records: list[dict], key: str) -> float | None:
    vals = [r[key] for r in records if isinstance(r.get(key), (int, float)) and r[key] == r[key]]
    return statistics.mean(vals) if vals else None


def telemetry(run_dir: Path, model: str, val_key: str) -> dict:
    """The run's telemetry: training log (last tenth of the logged steps), masks against the
    validation truth at the selected model's best validation step, and against the test truth."""
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    late = [r for r in train if r["step"] > 0.9 * train[-1]["step"]]
    val = [r for r in records if r["kind"] == f"val/{model}"]
    best = max(val, key=lambda r: r[val_key])
    masks = {r["step"]: r for r in records if r["kind"] == "val/masks"}
    out = {"train_last_tenth": {k: _mean(late, k) for k in TELEMETRY}, "best_step": best["step"],
           "val_masks_at_best": masks.get(best["step"]),
           "val_curve": [(r["step"], r[val_key]) for r in val]}
    test = json.loads((run_dir / "eval_test" / "metrics.json").read_text())
    out["test_masks"] = test.get("mask_quality")
    return out


def train(ds: str, seed: int, variant: str, folder: Path, common: list[str], extra: list[str]) -> dict:
    run_dir = folder / variant
    metrics = run_dir / "eval_test" / "metrics.json"
    wall = run_dir / "wall_s.txt"  # the run's wall time, kept for a rerun of this script that reuses it
    if not metrics.exists():
        t0 = time.time()
        cli("train", *common, f"run_dir={run_dir}", *VARIANTS[variant][1], *SIZES, *DATA[ds][1], *extra,
            log=folder / f"{variant}.log")
        wall.write_text(f"{time.time() - t0:.0f}\n")
        print(f"  [{ds}] {variant} seed {seed}: {wall.read_text().strip()} s", flush=True)
    models = json.loads(metrics.read_text())["models"]
    model = "teacher" if "teacher" in models else "student"
    key = DATA[ds][2][0]
    return {"model": model, "metrics": models[model]["metrics"], "student": models["student"]["metrics"][key],
            "telemetry": telemetry(run_dir, model, key),
            "wall_s": float(wall.read_text()) if wall.exists() else None}


def base_rates(folder: Path, common: list[str], variant: str = "paper") -> dict:
    """The validation split's base rates: the share of the labelled positions truly present per
    modality and in both (what a mask selecting all of them scores; the bar for the masks'
    precision). They are the data's, so any run with a teacher gives them (`avvp-dist eval`)."""
    path = folder / "base_rates.json"
    if not path.exists():
        run, out = folder / variant, folder / "eval_val_base_rates"
        cli("eval", "--split", "val", "--plots", "0", "--out", str(out), "--checkpoint", f"teacher={run / 'best_teacher.pt'}",
            "--checkpoint", f"student={run / 'best_student.pt'}", *common, f"run_dir={run}", *VARIANTS[variant][1],
            *SIZES, log=folder / "base_rates.log")
        quality = json.loads((out / "metrics.json").read_text())["mask_quality"]["teacher"]
        path.write_text(json.dumps({k: quality[k] for k in ("audio_base_rate", "visual_base_rate", "pair_base_rate")}))
    return json.loads(path.read_text())


def flattened(curve: list[tuple[int, float]]) -> bool:
    """Whether the best validation score in the last fifth is at most FLAT_POINTS above the best before."""
    end = curve[-1][0]
    before = [v for s, v in curve if s <= 0.8 * end]
    last = [v for s, v in curve if s > 0.8 * end]
    return bool(before and last) and max(last) - max(before) <= FLAT_POINTS


def hypotheses(ds: str, results: dict, seeds: list[int]) -> list[dict]:
    out = []
    for text, a, b in HYPOTHESES:
        if all((a, s) in results and (b, s) in results for s in seeds):
            per = {m: _stats([results[a, s]["metrics"][m] - results[b, s]["metrics"][m] for s in seeds])
                   for m in DATA[ds][2]}
            out.append({"hypothesis": text, "a": a, "b": b, "metrics": per})
    return out


def _ms(vals: list) -> str:
    vals = [v for v in vals if v is not None and v == v]
    if not vals:
        return "-"
    return f"{statistics.mean(vals):.3g} ± {statistics.stdev(vals):.2g}" if len(vals) > 1 else f"{vals[0]:.3g}"


def _val_masks(r: dict, key: str):
    m = r["telemetry"]["val_masks_at_best"]
    return None if m is None else m.get(key)


def variant_rows(ds: str, results: dict, variants: list[str], seeds: list[int]) -> list[str]:
    heads = DATA[ds][2]
    lines = ["| variant | selected | " + " | ".join(heads) + f" | its student's {heads[0]} | teacher masks at best val: audio P / R, visual P / R, "
             "pairs P | gain F1 audio / visual | last tenth: positive share a / v, ignored a / v | teacher gap | "
             "teacher > 0.99 a / v | student spread a |", "|---|---|" + "---|" * (len(heads) + 7)]
    for v in variants:
        runs = [results[v, s] for s in seeds]
        tel = [r["telemetry"]["train_last_tenth"] for r in runs]
        vm = lambda k: _ms([_val_masks(r, k) for r in runs])  # noqa: E731
        tm = lambda k: _ms([t[k] for t in tel])  # noqa: E731
        lines.append(
            f"| {VARIANTS[v][0]} | {runs[0]['model']} | " + " | ".join(_ms([r["metrics"][m] for r in runs]) for m in heads)
            + f" | {_ms([r['student'] for r in runs]) if runs[0]['model'] == 'teacher' else '-'}"
            + f" | {vm('teacher_audio_precision')} / {vm('teacher_audio_recall')}, {vm('teacher_visual_precision')} / "
              f"{vm('teacher_visual_recall')}, {vm('teacher_pair_precision')} | {vm('gain_f1_audio')} / "
              f"{vm('gain_f1_visual')} | {tm('mask_audio_pos')} / {tm('mask_visual_pos')}, {tm('mask_audio_ignored')} / "
              f"{tm('mask_visual_ignored')} | {tm('teacher_gap')} | {tm('teacher_audio_high')} / "
              f"{tm('teacher_visual_high')} | {tm('student_audio_spread')} |")
    return lines


def _run_minutes(results: dict) -> str:
    walls = [r["wall_s"] for r in results.values()]
    return "?" if None in walls else f"{sum(walls) / 60:.0f} min"


def markdown(ds: str, results: dict, tests: list[dict], variants: list[str], seeds: list[int], minutes: float,
             command: str, rates: dict) -> str:
    from avvp_dist.data.synth import SYNTH_VERSION

    heads = DATA[ds][2]
    lines = [f"# Held-out study 2, {ds} format (synthetic generator v{SYNTH_VERSION})", "",
             f"Seeds {', '.join(map(str, seeds))}; {len(results)} runs, {_run_minutes(results)} of runs (the sum of "
             f"their wall times, on this machine); this invocation {minutes:.0f} min; "
             f"command: `{command}`.", "",
             "Test split, best-on-val checkpoints, the selected model (the teacher where there is one); "
             "mean ± std over seeds. Telemetry: benchmarks/heldout2.py's docstring, docs/method.md.", "",
             "## Hypotheses (paired per seed; holds when the mean exceeds 2 std)", "",
             "| hypothesis | " + " | ".join(f"Δ {m}" for m in heads) + " | holds on |", "|---|" + "---|" * (len(heads) + 1)]
    for t in tests:
        per = t["metrics"]
        lines.append(f"| {t['hypothesis']} ({t['a']} - {t['b']}) | " + " | ".join(
            f"{per[m]['mean']:+.2f} ± {per[m]['std']:.2f} ({', '.join(f'{d:+.2f}' for d in per[m]['diffs'])})"
            for m in heads) + " | " + (", ".join(m for m in heads if per[m]["beyond_2std"]) or "none") + " |")
    lines += ["", "## Variants, with their telemetry", "", *variant_rows(ds, results, variants, seeds), ""]
    if rates:
        r = lambda k: _ms([rates[s][k] for s in seeds])  # noqa: E731
        lines += [f"Base rates of the validation truth at the labelled positions (what a mask selecting all of them "
                  f"scores in precision): audio {r('audio_base_rate')}, visual {r('visual_base_rate')}, both (pairs) "
                  f"{r('pair_base_rate')}.", ""]
    lines += [f"## Length: has han's validation flattened? (best in the last fifth at most {FLAT_POINTS} above the best before)", ""]
    for s in seeds:
        if ("han", s) in results:
            curve = results["han", s]["telemetry"]["val_curve"]
            lines.append(f"- seed {s}: {'yes' if flattened(curve) else 'no'} (validation {curve[-1][1]:.2f} at step "
                         f"{curve[-1][0]}, best {max(v for _, v in curve):.2f})")
    return "\n".join(lines) + "\n"


def chart(ds: str, results: dict, variants: list[str], seeds: list[int], rates: dict, path: Path) -> None:
    """Left: the headline metric per variant (mean ± std); right: the precision of the teacher's
    masks and pairs at the best validation step, the student's own beside them, and the base
    rates (grey), per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = DATA[ds][2][0]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    vals = [[results[v, s]["metrics"][key] for s in seeds] for v in variants]
    axes[0].bar(range(len(variants)), [statistics.mean(x) for x in vals],
                yerr=[statistics.stdev(x) if len(x) > 1 else 0 for x in vals], capsize=3)
    axes[0].set_xticks(range(len(variants)), variants, fontsize=8)
    axes[0].set_title(f"{ds}: test {key} (selected model)")
    for k, label in (("teacher_audio_precision", "teacher audio P"), ("student_audio_precision", "student audio P"),
                     ("teacher_visual_precision", "teacher visual P"), ("teacher_pair_precision", "pairs P")):
        ys = [statistics.mean([x for x in (_val_masks(results[v, s], k) for s in seeds) if x is not None] or [float("nan")])
              for v in variants]
        axes[1].plot(range(len(variants)), ys, marker="o", linestyle="none", label=label)
    for k, label, style in (("audio_base_rate", "audio base rate", ":"), ("visual_base_rate", "visual base rate", "--"),
                            ("pair_base_rate", "pairs base rate", "-.")) if rates else ():
        axes[1].axhline(statistics.mean(rates[s][k] for s in seeds), color="grey", linestyle=style, label=label)
    axes[1].set_xticks(range(len(variants)), variants, fontsize=8)
    axes[1].set_title("masks against the validation truth at the best step")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="llp,unav100")
    ap.add_argument("--seeds", default=HELD_OUT_SEEDS, help="default: the held-out seeds, stated before the first run")
    ap.add_argument("--variants", default=",".join(STUDY), help=f"of {', '.join(VARIANTS)}")
    ap.add_argument("--jobs", type=int, default=2, help="runs side by side (one thread each)")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "heldout2")
    ap.add_argument("overrides", nargs="*", help="training overrides for every run (a smoke run: train.max_steps=200)")
    args = ap.parse_args()
    seeds, variants = [int(s) for s in args.seeds.split(",")], args.variants.split(",")
    command = " ".join(["python benchmarks/heldout2.py", *sys.argv[1:]])
    for ds in args.dataset.split(","):
        t0 = time.time()
        data = {s: make_data(ds, s, args.out) for s in seeds}
        jobs = [(s, v) for s in seeds for v in variants]
        with ThreadPoolExecutor(args.jobs) as pool:
            done = list(pool.map(lambda sv: train(ds, sv[0], sv[1], *data[sv[0]], args.overrides), jobs))
        results = {(v, s): r for (s, v), r in zip(jobs, done)}
        rates = {s: base_rates(*data[s]) for s in seeds} if "paper" in variants else {}
        tests = hypotheses(ds, results, seeds)
        minutes = (time.time() - t0) / 60
        text = markdown(ds, results, tests, variants, seeds, minutes, command, rates)
        out = args.out / f"heldout2_{ds}"
        out.with_suffix(".md").write_text(text)
        out.with_suffix(".json").write_text(json.dumps(
            {"seeds": seeds, "minutes": minutes, "hypotheses": tests, "flat_points": FLAT_POINTS, "base_rates": rates,
             "runs": {f"{v}/seed{s}": r for (v, s), r in results.items()}}, indent=1))
        chart(ds, results, variants, seeds, rates, out.with_suffix(".png"))
        print(text)
        print(f"wrote {out}.md, .json, .png")


if __name__ == "__main__":
    main()
