"""What a run folder says about its starts: `run.json` (the latest start) and `history.jsonl`
(append-only: one line per start and per end, never rewritten).

A start records the time, the launcher, the job id, the step resumed from (and the
checkpoint) and why the run (re)started, read from the previous line: after an `end` line,
its status (preempted, terminated, stopped, failed, finished); after a `start` line with no
end, the previous process died without a word: a node failure when SLURM counts a restart
(SLURM_RESTART_COUNT grew), a crash otherwise (killed, out of memory, its node lost).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import deepspeed
import torch
import yaml

from avvp_dist import __version__

HISTORY = "history.jsonl"
REASONS = {"preempted": "preemption", "terminated": "restart after SIGTERM", "stopped": "restart after a stop on "
           "non-finite losses", "failed": "restart after a crash", "finished": "restart of a finished run"}


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def job_id() -> str | None:
    """The scheduler's job id: SLURM's (array jobs as <job>_<task>), submitit's local one, torchrun's run id."""
    if os.environ.get("SLURM_ARRAY_JOB_ID"):
        return f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ.get('SLURM_ARRAY_TASK_ID', '')}"
    for name in ("SLURM_JOB_ID", "SUBMITIT_LOCAL_JOB_ID", "TORCHELASTIC_RUN_ID"):
        if os.environ.get(name):
            return os.environ[name]
    return None


def history(run_dir: Path) -> list[dict]:
    """The events of `history.jsonl`, oldest first. A line that is not JSON (a write cut
    short, e.g. by a power loss) is reported and skipped: it never stops a start."""
    path = Path(run_dir) / HISTORY
    if not path.is_file():
        return []
    events = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            event = None
        if not isinstance(event, dict) or "event" not in event:
            logging.getLogger(__name__).warning("%s: line %d is not a history event (a write cut short?); skipped: %r",
                                                path, number, line[:120])
            continue
        events.append(event)
    return events


def _append(run_dir: Path, event: dict) -> None:
    path = Path(run_dir) / HISTORY
    torn = False
    if path.is_file() and path.stat().st_size:
        with open(path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            torn = f.read(1) != b"\n"
    with open(path, "a") as f:
        f.write(("\n" if torn else "") + json.dumps(event) + "\n")  # a torn last line stays alone on its line
        f.flush()
        os.fsync(f.fileno())


def start_reason(previous: list[dict], restart_count: int) -> str:
    if not previous:
        return "first start"
    last = previous[-1]
    if last["event"] == "end":
        reason = REASONS.get(last["status"], last["status"])
        return f"{reason} ({last['error']})" if last.get("error") else reason
    on = f" on {', '.join(last['nodes'])}" if last.get("nodes") else ""
    if restart_count > int(last.get("restart_count") or 0):
        return f"node failure (SLURM requeued the job; the previous start{on} recorded no end)"
    return f"crash (the previous start{on} recorded no end: killed, out of memory, or its node lost)"


def changed_by(cfg) -> dict[str, str]:
    """{dotted key: the file or "command line" that set it} for each value that differs from the preset."""
    sources = getattr(cfg, "sources", {})
    return {k: sources.get(k, "the code that built the config") for k in getattr(cfg, "preset_overrides", {})}


def preset_record(cfg) -> dict:
    """What trains: the preset, every model / method / train value that differs from it, and
    what changed each (the config file or the command line)."""
    return {"preset": cfg.preset, "preset_overrides": getattr(cfg, "preset_overrides", {}),
            "preset_changed_by": changed_by(cfg)}


def describe_preset(cfg) -> str:
    """`preset paper; changed by recipes/configs/llp.yaml: model.d_model=64; by the command line:
    train.lr=0.001` (or `preset paper as it is`)."""
    changed, by = getattr(cfg, "preset_overrides", {}), changed_by(cfg)
    if not changed:
        return f"preset {cfg.preset} as it is"
    groups = {}
    for k, v in changed.items():
        groups.setdefault(by[k], []).append(f"{k}={v}")
    return f"preset {cfg.preset}; changed " + "; ".join(
        f"by {'the command line' if src == 'command line' else src}: {', '.join(items)}" for src, items in groups.items())


def record_start(run_dir: Path, cfg, launcher: str, world_size: int, precision: str, threads: int,
                 step: int, checkpoint: Path | None, ranks: list[dict] | None = None,
                 model: dict | None = None, scale: dict | None = None) -> dict:
    """Writes config.yaml (`cfg` as loaded) and run.json (this start) and appends the start to
    history.jsonl. `ranks`: where each rank runs (`engine.placement.this_rank`), recorded in
    both; `model`: facts of the built model and schedule (parameter count, the step decay's
    interval); `scale`: the global batch, per-rank batch, accumulation, epochs and steps."""
    run_dir.mkdir(parents=True, exist_ok=True)
    restarts = int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0)
    event = {"event": "start", "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "launcher": launcher,
             "job_id": job_id(), "restart_count": restarts, "world_size": world_size, "step": step,
             "checkpoint": str(checkpoint) if checkpoint else None,
             "reason": start_reason(history(run_dir), restarts),
             "nodes": sorted({r["node"] for r in ranks}) if ranks else None}
    _append(run_dir, event)
    values = dataclasses.asdict(cfg)
    for derived in ("preset_overrides", "sources"):  # derived at load: the file loads back as it is (`--config`)
        values.pop(derived, None)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(values, sort_keys=False))
    record = {**preset_record(cfg), "model": model or {}, "scale": scale or {},
              "command": sys.argv, "git_commit": _git_commit(), "seed": cfg.seed, "world_size": world_size,
              "launcher": launcher, "precision": precision, "zero_stage": cfg.train.zero_stage,
              "threads_per_rank": threads, "ranks": ranks, "started": event["time"], "start": event,
              "versions": {"avvp_dist": __version__, "torch": torch.__version__, "deepspeed": deepspeed.__version__,
                           "python": sys.version.split()[0]}}
    (run_dir / "run.json").write_text(json.dumps(record, indent=1))
    return event


def record_end(run_dir: Path, status: str, step: int, error: str | None = None) -> None:
    """Appends the end of this start: finished, preempted, terminated, stopped or failed."""
    event = {"event": "end", "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "status": status, "step": step}
    if error:
        event["error"] = error
    _append(run_dir, event)
