"""What a run reports: its evaluations in fp32, the profile, the final models, the test-split report and the summary."""
from __future__ import annotations

import copy
import dataclasses
import json
import statistics
from pathlib import Path

import torch
import torch.distributed as dist

from avvp_dist.engine.build import Run
from avvp_dist.engine.logger import plot_curves
from avvp_dist.engine.record import describe_preset, preset_record
from avvp_dist.engine.telemetry import selection_quality
from avvp_dist.eval.datasets import dataset_spec
from avvp_dist.eval.run import evaluate, print_report, write_outputs
from avvp_dist.model.checkpoint import load_model, save_model
from avvp_dist.profiling import StepTimer


def models_of(run: Run) -> dict[str, torch.nn.Module]:
    """{"student": ..., "teacher": ...} (the teacher where the run has one)."""
    models = {"student": run.engine.module}
    if run.teacher is not None:
        models["teacher"] = run.teacher.module
    return models


def evaluate_models(run: Run, split: str, models: dict[str, torch.nn.Module]) -> dict:
    """`eval.run.evaluate` of in-memory models on a split, sharded over the ranks, in fp32
    whatever the training precision."""
    data = dataclasses.replace(run.cfg.data, num_workers=0, batch_size=max(8, run.cfg.data.batch_size))
    fp32 = {name: m if next(m.parameters()).dtype == torch.float32 else copy.deepcopy(m).float()
            for name, m in models.items()}
    return evaluate({}, run.shards, data, split, run.cfg.train.protocol, run.rank, run.world,
                    model_override=fp32, detection=run.cfg.eval.detection)


def save_models(run: Run, prefix: str, step: int, extra: dict | None = None) -> None:
    """`{prefix}_student.pt` and `{prefix}_teacher.pt`, model-only (rank 0)."""
    for name, m in models_of(run).items():
        save_model(m, run.run_dir / f"{prefix}_{name}.pt", run.manifest.classes, run.manifest.dataset,
                   extra={"step": step, **(extra or {}).get(name, {}), **preset_record(run.cfg)},
                   feature_files={f["name"]: f["source"] for f in run.manifest.features if "source" in f})


def write_profile(run: Run, timer: StepTimer, steps: int) -> None:
    """profile.json: median (and mean) seconds per step of each section, after a warm-up."""
    skip = max(5, steps // 10)
    per_step = run.samples_per_step
    measured = timer.steps[skip:]
    seconds = sum(s["step"] for s in measured)
    method = run.cfg.method
    record = {"world_size": run.world, "threads_per_rank": run.threads,
              "batch_per_rank": run.cfg.data.batch_size, "samples_per_step": per_step, "warmup_steps": skip,
              "sections_s": timer.summary(skip), "sections_mean_s": timer.summary(skip, statistics.fmean),
              "samples_per_s": per_step * len(measured) / seconds if seconds else None,
              "method": {"pseudo": method.pseudo.enabled, "cma": method.cma.enabled,
                         "teacher": run.teacher is not None}}
    (run.run_dir / "profile.json").write_text(json.dumps(record, indent=1))


def start_notes(run: Run) -> list[str]:
    """What a user should know at start beyond the preset line: the batch and the length at this
    world size, the EMA teacher's horizon, and shards whose features are not the feature set
    the config names."""
    notes, tc, sc = [], run.cfg.method.teacher, run.scale()
    notes.append(f"{run.plan.describe()}; {sc['steps']:,} steps of {sc['steps_per_epoch']:,} per epoch = "
                 f"{sc['epochs']:g} epochs" + (f" (train.epochs {sc['epochs_asked']:g})" if sc["epochs_asked"] else ""))
    if run.teacher is not None:
        horizon = round(1 / (1 - tc.decay))
        reached = max(0, round((10 * tc.decay - 1) / (1 - tc.decay)))  # (1 + k) / (10 + k) = decay
        warm = (f"with the warm-up min({tc.decay}, (1 + k) / (10 + k)), which reaches {tc.decay} at update "
                f"{reached:,}" if tc.warmup else "no warm-up")
        notes.append(f"EMA teacher: decay {tc.decay} (horizon about {horizon:,} steps), {warm}")
    if run.cfg.data.features is None:
        named = [s.name for s in run.cfg.data.feature_specs()]
        held = [f["name"] for f in run.manifest.features]
        if sorted(named) != sorted(held):
            feature_set = run.cfg.data.feature_set or "the default"
            notes.append(f"note: the shards hold features {held}; data.feature_set ({feature_set}) names {named}; "
                         "training uses the shards' (write them with the feature set the preset names, docs/data.md)")
    return notes


def throughput_line(run: Run, seconds: float, steps: int, nan_skips: int) -> str:
    rate = steps * run.samples_per_step / max(seconds, 1e-9)
    return (f"throughput {rate:.1f} samples/s over {steps} steps ({seconds:.0f} s of training, without "
            f"validation and checkpoints); {nan_skips} non-finite steps skipped")


def _nodes(ranks: list[dict]) -> str:
    """`2 node(s): n1, n2` from `placement.this_rank` records."""
    names = list(dict.fromkeys(r["node"] for r in ranks))
    return f"{len(names)} node(s): {', '.join(names)}"


def summary_lines(run: Run, throughput: str, best: dict, curves: Path | None) -> list[str]:
    """The closing summary a run prints and writes to summary.txt."""
    key, t, out = best.get("metric", "score"), run.cfg.train, run.run_dir
    return [
        "", "=" * 72, f"run {out}",
        describe_preset(run.cfg).replace("preset ", "preset     ", 1),
        f"data       {run.manifest.dataset}: {run.manifest.num_samples} training videos, "
        f"{len(run.manifest.classes)} classes, shards in {run.shards}",
        f"world      {run.world} rank(s) ({run.env.source}) on {_nodes(run.ranks)}, "
        f"{run.threads} threads/rank, ZeRO {t.zero_stage}, {run.precision}",
        throughput,
        f"best       {best.get('model')} {key} {best['score']:.2f} at step {best['step']} "
        f"-> {out / ('best_' + str(best.get('model')) + '.pt')}",
        f"test       {out / 'eval_test' / 'metrics.json'}; plots in {out / 'eval_test' / 'plots'}",
        f"curves     {curves}", "=" * 72]


def final_report(run: Run, throughput: str, best: dict) -> None:
    """Test-split evaluation of the best checkpoints (every rank), then on rank 0 metrics.json,
    tables, plots, curves and the summary."""
    # the same names on every rank (not what each rank happens to see on disk): same collectives;
    # evaluated on the training device, like the periodic validations
    models = {n: load_model(run.run_dir / f"best_{n}.pt", run.engine.device)[0] for n in models_of(run)}
    result = evaluate_models(run, "test", models)
    if run.rank != 0:
        return
    result.update(preset_record(run.cfg))  # what trained, in metrics.json
    if run.cfg.method.masks_from_teacher:  # the teacher's masks against the test split's truth
        result["mask_quality"] = selection_quality(result, dataset_spec(result["dataset"]), run.cfg.method)
    write_outputs(result, run.run_dir / "eval_test", run.cfg.train.plots)
    curves = plot_curves(run.run_dir)
    print()
    print_report(result)
    summary = summary_lines(run, throughput, best, curves)
    print("\n".join(summary), flush=True)
    (run.run_dir / "summary.txt").write_text("\n".join(summary) + "\n")


def finish(run: Run, seconds: float, steps: int, nan_skips: int, best: dict) -> None:
    """The end of a run: final models, then the test-split report (or, with train.final_eval
    off, the throughput alone)."""
    if run.rank == 0:
        save_models(run, "final", run.state.step)
    if dist.is_initialized():
        dist.barrier()  # rank 0 has written every best_/final_ file before anyone reads them
    throughput = throughput_line(run, seconds, steps, nan_skips)
    if run.cfg.train.final_eval:
        final_report(run, throughput, best)
    elif run.rank == 0:
        print(f"{throughput}\nno final evaluation (train.final_eval=false)", flush=True)
        (run.run_dir / "summary.txt").write_text(throughput + "\n")
