"""Held-out accuracy study over the presets (han, paper, ours; external pseudo-labels), on the
synthetic data (generator version in avvp_dist.data.synth.SYNTH_VERSION).

    python benchmarks/ablation.py                      # LLP and UnAV-100 formats, seeds 31, 32, 33
    python benchmarks/ablation.py --dataset llp --seeds 31 --variants han,ours

For each seed s: synthetic data with seed s (LLP label sets and val/test event timings
copied from the real annotations the repository carries in annotations/; external
segment labels with the generator's default noise), sharded once; then every variant
trains on it with training seed s (one process, one thread each, --jobs runs side by
side) and its best-on-val checkpoints are scored on the test split. Every variant shares
the backbone (HAN's: one hybrid-attention layer for both directions) and the optimizer of
the dataset's config file, so that the paired differences measure the method; `han_adam`
is HAN with its own optimizer (Adam, StepLR). Per variant: mean and standard deviation
over seeds of every metric for the teacher and the student; the paired per-seed
difference to `han`'s student of the headline metrics, for the variant's teacher and its
student; and the study's hypotheses (paper beats han by more than 2 std of the paired
difference, ours beats paper), each on the model a run selects (the teacher where there
is one). Writes `<out>/<dataset>.md` (tables), `<dataset>.json` (every number) and
`<dataset>.png` (bar chart).

The seeds 31, 32, 33 were chosen before the study's first run and no tuning ever used
them (the tuning runs used 0-2 and 10-12, docs/accuracy.md).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ANNOTATIONS = REPO / "annotations"
sys.path.insert(0, str(REPO))
from avvp_dist.config.presets import HAN_OPTIMIZER  # noqa: E402

HELD_OUT_SEEDS = "31,32,33"  # stated before the first run; never used by any tuning run


def _pseudo(source: str, teacher: bool) -> list[str]:
    """External labels as the pseudo-label source (`external`), or joined with the EMA teacher's masks (`both`)."""
    return ["method.pseudo.enabled=true", f"method.pseudo.source={source}",
            f"method.teacher.enabled={str(teacher).lower()}"]


VARIANTS = {  # name -> (label, overrides); the presets set every switch of the method
    "han": ("han", ["preset=han"]),
    "han_ema": ("han + EMA teacher, evaluated only", ["preset=han", "method.teacher.enabled=true",
                                                      "method.teacher.keep=true"]),
    # the paper's method on the study's one backbone (HAN's shared layer): `paper` itself trains CoLeaF's
    "paper_adaptive": ("paper on HAN's backbone, adaptive masks", ["preset=paper", "model.backbone=han",
                                                                   "method.pseudo.mode=adaptive"]),
    "paper_topk": ("paper on HAN's backbone, top-k masks", ["preset=paper", "model.backbone=han",
                                                            "method.pseudo.mode=topk"]),
    "ours": ("ours", ["preset=ours"]),
    "external": ("han + external labels, no teacher", ["preset=han", *_pseudo("external", False)]),
    "external_ema": ("han + external labels + EMA teacher masks", ["preset=han", *_pseudo("both", True)]),
    "han_adam": ("han with HAN's optimizer (Adam, StepLR)", ["preset=han"] + [f"train.{k}={v}" for k, v in
                                                                              HAN_OPTIMIZER.items()]),
}
BASELINE = "han"
HYPOTHESES = [("paper beats han", "paper_adaptive", "han"), ("ours beats paper", "ours", "paper_adaptive")]


DATASETS = {
    "llp": {"config": "recipes/configs/ablation_llp.yaml", "annotations": ANNOTATIONS / "llp",
            "metrics": ["seg_a", "seg_v", "seg_av", "seg_type", "seg_event",
                        "evt_a", "evt_v", "evt_av", "evt_type", "evt_event"],
            "headline": ["seg_type", "evt_type"], "variants": list(VARIANTS)},
    "unav100": {"config": "recipes/configs/ablation_unav100.yaml", "annotations": ANNOTATIONS / "unav100",
                "metrics": ["map_mean", "map@0.5", "video_map", "seg_av", "evt_av"],
                "headline": ["map_mean", "map@0.5", "video_map"], "variants": list(VARIANTS)},
}


def cli(*args: str, log: Path) -> None:
    with open(log, "a") as f:
        proc = subprocess.run([sys.executable, "-m", "avvp_dist.cli", *args], stdout=f, stderr=subprocess.STDOUT,
                              env=dict(os.environ, OMP_NUM_THREADS="1"))
    if proc.returncode != 0:
        raise SystemExit(f"avvp-dist {args[0]} failed (exit {proc.returncode}); log: {log}")


def make_data(ds: str, seed: int, out: Path, extra: list[str]) -> Path:
    spec = DATASETS[ds]
    folder = out / "data" / f"seed{seed}"
    shards = folder / "shards"
    if (shards / "test" / "manifest.json").exists():
        return shards
    folder.mkdir(parents=True, exist_ok=True)
    ann = [f"synth.annotations={spec['annotations']}"] if spec["annotations"].exists() else []
    common = ["--config", str(REPO / spec["config"]), f"seed={seed}", f"run_dir={folder}", f"synth.out={folder / 'raw'}",
              f"data.root={folder / 'raw'}", f"data.shards={shards}", *ann, *extra]
    cli("synth", *common, log=folder / "data.log")
    cli("shard", *common, log=folder / "data.log")
    return shards


def train(ds: str, seed: int, variant: str, shards: Path, out: Path, extra: list[str]) -> dict:
    run_dir = out / "runs" / f"{variant}_seed{seed}"
    metrics = run_dir / "eval_test" / "metrics.json"
    if not metrics.exists():
        run_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        cli("train", "--config", str(REPO / DATASETS[ds]["config"]), f"seed={seed}", f"run_dir={run_dir}",
            f"data.shards={shards}", "train.threads=1", "data.num_workers=0", "train.plots=0",
            *VARIANTS[variant][1], *extra, log=run_dir / "train.log")
        print(f"  [{ds}] {variant} seed {seed}: {time.time() - t0:.0f} s", flush=True)
    models = json.loads(metrics.read_text())["models"]
    return {name: rep["metrics"] for name, rep in models.items()}


def selected(models: dict) -> str:
    return "teacher" if "teacher" in models else "student"


def _stats(diffs: list[float]) -> dict:
    mean = statistics.mean(diffs)
    std = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
    return {"diffs": diffs, "mean": mean, "std": std, "beyond_2std": len(diffs) > 1 and mean > 2 * std}


def summarise(ds: str, results: dict, variants: list[str], seeds: list[int]) -> dict:
    """Per variant: mean and std of every metric per model; `paired[model][metric]`: the
    per-seed differences of that model to the baseline's student, their mean, std and
    whether the mean exceeds twice the std."""
    spec = DATASETS[ds]
    summary = {}
    for v in variants:
        entry = {"label": VARIANTS[v][0], "models": {}, "paired": {}}
        for model in ("teacher", "student"):
            runs = [results[v, s].get(model) for s in seeds]
            if any(r is None for r in runs):
                continue
            entry["models"][model] = {m: (statistics.mean(r[m] for r in runs),
                                          statistics.stdev(r[m] for r in runs) if len(runs) > 1 else 0.0)
                                      for m in spec["metrics"]}
            if v != BASELINE and BASELINE in variants:
                entry["paired"][model] = {m: _stats([results[v, s][model][m] - results[BASELINE, s]["student"][m]
                                                     for s in seeds]) for m in spec["headline"]}
        summary[v] = entry
    return summary


def hypotheses(ds: str, results: dict, variants: list[str], seeds: list[int]) -> list[dict]:
    """Each hypothesis "a beats b": per seed, a's selected model minus b's, on every headline
    metric; it holds on a metric when the mean difference exceeds twice its std."""
    out = []
    for text, a, b in HYPOTHESES:
        if a in variants and b in variants:
            per = {m: _stats([results[a, s][selected(results[a, s])][m] - results[b, s][selected(results[b, s])][m]
                              for s in seeds]) for m in DATASETS[ds]["headline"]}
            out.append({"hypothesis": text, "a": a, "b": b, "metrics": per})
    return out


def markdown(ds: str, summary: dict, tests: list[dict], seeds: list[int], minutes: float, command: str) -> str:
    spec = DATASETS[ds]
    from avvp_dist.data.synth import SYNTH_VERSION

    lines = [f"# Held-out study, {ds} format (synthetic generator v{SYNTH_VERSION})", "",
             f"Seeds {', '.join(map(str, seeds))}; {minutes:.0f} min on this machine; command: `{command}`.", "",
             "Test split, best-on-val checkpoints; mean ± std over seeds.", ""]
    for model in ("teacher", "student"):
        lines += [f"## {model}", "", "| variant | " + " | ".join(spec["metrics"]) + " |",
                  "|---|" + "---|" * len(spec["metrics"])]
        for e in summary.values():
            if model in e["models"]:
                lines.append(f"| {e['label']} | " + " | ".join(f"{m:.1f} ± {s:.1f}" for m, s in
                                                              e["models"][model].values()) + " |")
        lines.append("")
    lines += [f"## paired difference to {BASELINE}'s student (per seed, then mean ± std; * beyond 2 std)", "",
              "| variant | model | " + " | ".join(f"Δ {m}" for m in spec["headline"]) + " |",
              "|---|---|" + "---|" * len(spec["headline"])]
    for e in summary.values():
        for model, per in e["paired"].items():
            lines.append(f"| {e['label']} | {model} | " + " | ".join(
                f"{per[m]['mean']:+.2f} ± {per[m]['std']:.2f}{' *' if per[m]['beyond_2std'] else ''} "
                f"({', '.join(f'{d:+.2f}' for d in per[m]['diffs'])})" for m in spec["headline"]) + " |")
    lines += ["", "## hypotheses (selected models: the teacher where there is one)", "",
              "| hypothesis | " + " | ".join(f"Δ {m}" for m in spec["headline"]) + " | holds (> 2 std) on |",
              "|---|" + "---|" * (len(spec["headline"]) + 1)]
    for t in tests:
        per = t["metrics"]
        lines.append(f"| {t['hypothesis']} ({t['a']} - {t['b']}) | " + " | ".join(
            f"{per[m]['mean']:+.2f} ± {per[m]['std']:.2f} ({', '.join(f'{d:+.2f}' for d in per[m]['diffs'])})"
            for m in spec["headline"]) + " | " + (", ".join(m for m in spec["headline"] if per[m]["beyond_2std"])
                                                 or "none") + " |")
    return "\n".join(lines) + "\n"


def chart(ds: str, summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spec = DATASETS[ds]
    names = list(summary)
    fig, ax = plt.subplots(figsize=(2 + 1.6 * len(names), 4))
    width = 0.8 / len(spec["headline"])
    for i, m in enumerate(spec["headline"]):
        vals = [summary[v]["models"][selected(summary[v]["models"])][m] for v in names]
        ax.bar([j + i * width for j in range(len(names))], [a for a, _ in vals], width, yerr=[b for _, b in vals],
               capsize=3, label=m)
    ax.set_xticks([j + width * (len(spec["headline"]) - 1) / 2 for j in range(len(names))])
    ax.set_xticklabels([summary[v]["label"] for v in names], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("test score (teacher where there is one)")
    ax.set_title(f"{ds}: mean ± std over seeds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="llp,unav100")
    ap.add_argument("--seeds", default=HELD_OUT_SEEDS, help="default: the held-out seeds, stated before the first run")
    ap.add_argument("--variants", default="", help=f"default: all; known: {', '.join(VARIANTS)}")
    ap.add_argument("--jobs", type=int, default=2, help="runs side by side (one thread each)")
    ap.add_argument("--out", default="runs/heldout")
    ap.add_argument("--data-override", action="append", default=[], help="synth/data overrides, e.g. synth.num_train=200")
    ap.add_argument("overrides", nargs="*", help="training overrides for every run, e.g. train.max_steps=50")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    asked = [v for v in args.variants.split(",") if v]
    unknown = set(asked) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variants {sorted(unknown)}; known: {', '.join(VARIANTS)}")
    command = " ".join(["python benchmarks/ablation.py", *sys.argv[1:]])
    for ds in args.dataset.split(","):
        t0 = time.time()
        out = Path(args.out) / ds
        variants = asked or DATASETS[ds]["variants"]
        shards = {s: make_data(ds, s, out, args.data_override) for s in seeds}
        jobs = [(s, v) for s in seeds for v in variants]
        with ThreadPoolExecutor(args.jobs) as pool:
            done = list(pool.map(lambda sv: train(ds, sv[0], sv[1], shards[sv[0]], out, args.overrides), jobs))
        results = {(v, s): r for (s, v), r in zip(jobs, done)}
        summary = summarise(ds, results, variants, seeds)
        tests = hypotheses(ds, results, variants, seeds)
        minutes = (time.time() - t0) / 60
        text = markdown(ds, summary, tests, seeds, minutes, command)
        (out / f"{ds}.md").write_text(text)
        (out / f"{ds}.json").write_text(json.dumps({"seeds": seeds, "minutes": minutes, "summary": summary,
                                                    "hypotheses": tests,
                                                    "runs": {f"{v}/seed{s}": r for (v, s), r in results.items()}},
                                                   indent=1))
        chart(ds, summary, out / f"{ds}.png")
        print(text)
        print(f"wrote {out / (ds + '.md')}, {out / (ds + '.json')}, {out / (ds + '.png')}")


if __name__ == "__main__":
    main()
