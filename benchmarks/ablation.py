"""Accuracy study: the method against the weak baseline, with ablations, on the frozen
synthetic data (generator version in avvp_dist.data.synth.SYNTH_VERSION).

    python benchmarks/ablation.py                      # LLP and UnAV-100 formats, 3 seeds
    python benchmarks/ablation.py --dataset llp --seeds 0 --variants baseline,full

For each seed s: synthetic data with seed s (LLP label sets and val/test event timings
copied from the real annotations the repository carries in annotations/),
sharded once; then every variant trains on it with training seed s (one process, one
thread each, --jobs runs side by side) and its best-on-val checkpoints are scored on the
test split. Per variant: mean and standard deviation over seeds of every metric for the
teacher and the student; the paired per-seed difference to the baseline (mean, std) of
the headline metrics, each variant's selected model (the teacher where there is one)
against the baseline's student. Writes `<out>/<dataset>.md` (tables), `<dataset>.json`
(every number) and `<dataset>.png` (bar chart).
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


def _on(pseudo: str | None = None, refine: bool = False, cma: str | None = None) -> list[str]:
    """Overrides that set every switch of the method. pseudo: None, "on" (the mask mode of
    the dataset's ablation config), "adaptive" or "topk"; cma: None, "agree", "cross"."""
    flag = lambda on: str(bool(on)).lower()  # noqa: E731
    out = [f"method.pseudo.enabled={flag(pseudo)}", f"method.refine.enabled={flag(refine)}",
           f"method.cma.enabled={flag(cma)}"]
    out += [f"method.pseudo.mode={pseudo}"] if pseudo in ("adaptive", "topk") else []
    out += [f"method.cma.cross_video={flag(cma == 'cross')}"] if cma else []
    return out


VARIANTS = {  # name -> (label, overrides)
    "baseline": ("weak baseline (HAN)", _on() + ["method.teacher.enabled=false"]),
    "pseudo_adaptive": ("+ EMA pseudo, adaptive", _on("adaptive")),
    "pseudo_topk": ("+ EMA pseudo, top-k", _on("topk")),
    "pseudo_refine": ("+ EMA pseudo, + modality refinement", _on("on", refine=True)),
    "cma_agree": ("+ CMA agreement only", _on(cma="agree")),
    "cma_cross": ("+ CMA with cross-video", _on(cma="cross")),
    "full_no_refine": ("full method without refinement", _on("on", cma="cross")),
    "full": ("full method", _on("on", refine=True, cma="cross")),
}


DATASETS = {
    "llp": {"config": "recipes/configs/ablation_llp.yaml", "annotations": ANNOTATIONS / "llp",
            "metrics": ["seg_a", "seg_v", "seg_av", "seg_type", "seg_event",
                        "evt_a", "evt_v", "evt_av", "evt_type", "evt_event"],
            "headline": ["seg_type", "evt_type"], "variants": list(VARIANTS)},
    "unav100": {"config": "recipes/configs/ablation_unav100.yaml", "annotations": ANNOTATIONS / "unav100",
                "metrics": ["map_mean", "map@0.5", "video_map", "seg_av", "evt_av"],
                "headline": ["map_mean", "map@0.5", "video_map"],
                # smaller: untrimmed videos cost about 4x an LLP video per step
                "variants": ["baseline", "pseudo_adaptive", "pseudo_topk", "cma_cross", "full"],
                # UnAV-100 labels are audio-visual events: in both modalities by definition, so
                # the modality refinement has nothing to correct (its configs turn it off)
                "fixed": ["method.refine.enabled=false"]},
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
            *VARIANTS[variant][1], *DATASETS[ds].get("fixed", []), *extra, log=run_dir / "train.log")
        print(f"  [{ds}] {variant} seed {seed}: {time.time() - t0:.0f} s", flush=True)
    models = json.loads(metrics.read_text())["models"]
    return {name: rep["metrics"] for name, rep in models.items()}


def selected(models: dict) -> str:
    return "teacher" if "teacher" in models else "student"


def summarise(ds: str, results: dict, variants: list[str], seeds: list[int]) -> dict:
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
        if v != "baseline" and "baseline" in variants:
            for m in spec["headline"]:
                diffs = [results[v, s][selected(results[v, s])][m] - results["baseline", s]["student"][m]
                         for s in seeds]
                mean = statistics.mean(diffs)
                std = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
                entry["paired"][m] = {"diffs": diffs, "mean": mean, "std": std,
                                      "beyond_2std": len(diffs) > 1 and mean > 2 * std}
        summary[v] = entry
    return summary


def markdown(ds: str, summary: dict, seeds: list[int], minutes: float, command: str) -> str:
    spec = DATASETS[ds]
    from avvp_dist.data.synth import SYNTH_VERSION

    lines = [f"# Accuracy study, {ds} format (synthetic generator v{SYNTH_VERSION})", "",
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
    lines += ["## paired difference to the baseline (per seed: variant's teacher, or student without one, "
              "minus the baseline's student)", "",
              "| variant | " + " | ".join(f"Δ {m} (mean ± std)" for m in spec["headline"]) + " | > 2 std |",
              "|---|" + "---|" * (len(spec["headline"]) + 1)]
    for e in summary.values():
        if e["paired"]:
            p = e["paired"]
            lines.append(f"| {e['label']} | " + " | ".join(f"{p[m]['mean']:+.2f} ± {p[m]['std']:.2f}"
                                                           for m in spec["headline"])
                         + " | " + ", ".join(m for m in spec["headline"] if p[m]["beyond_2std"]) + " |")
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
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--variants", default="", help=f"default: all for llp, fewer for unav100; known: {', '.join(VARIANTS)}")
    ap.add_argument("--jobs", type=int, default=2, help="runs side by side (one thread each)")
    ap.add_argument("--out", default="runs/ablation")
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
        minutes = (time.time() - t0) / 60
        text = markdown(ds, summary, seeds, minutes, command)
        (out / f"{ds}.md").write_text(text)
        (out / f"{ds}.json").write_text(json.dumps({"seeds": seeds, "minutes": minutes, "summary": summary,
                                                    "runs": {f"{v}/seed{s}": r for (v, s), r in results.items()}},
                                                   indent=1))
        chart(ds, summary, out / f"{ds}.png")
        print(text)
        print(f"wrote {out / (ds + '.md')}, {out / (ds + '.json')}, {out / (ds + '.png')}")


if __name__ == "__main__":
    main()
