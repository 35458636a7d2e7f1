"""Training checkpoints: DeepSpeed's sharded state plus our per-rank state, written atomically.

Layout: `<run_dir>/checkpoints/step_NNNNNNN/` holds DeepSpeed's files (every rank writes
its ZeRO part), `rank_R.pt` per rank (stream position, RNG state), `run.json` (what the
checkpoint fits: model config, features, classes, world size; read before anything is
loaded), and `COMPLETE`, written by rank 0 after a barrier once every rank has finished.
`latest` names the newest complete one and is replaced atomically. A folder without
`COMPLETE` (a crash while saving) is never resumed from, and is cleared at the next start;
a folder written again (a run resumed from an older step reaches it anew) loses its
`COMPLETE` first, so a crash during the rewrite never leaves a mixed folder marked complete.

Loading never unpickles arbitrary objects: every file is read with
`torch.load(weights_only=True)`. DeepSpeed's own loader uses `weights_only=False`, so the
engine's checkpoint engine is replaced by `WeightsOnlyCheckpointEngine`, which allows
only tensors, containers, numbers, strings and the few plain DeepSpeed data classes its
ZeRO optimizer states hold (`SAFE_GLOBALS`); anything else is refused before it is built.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
import torch.distributed as dist
from deepspeed.runtime.checkpoint_engine.torch_checkpoint_engine import TorchCheckpointEngine
from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler, LossScaler
from deepspeed.runtime.zero.config import ZeroStageEnum
from deepspeed.utils.tensor_fragment import fragment_address

from avvp_dist.model.checkpoint import CheckpointError as ModelCheckpointError
from avvp_dist.model.checkpoint import weights_only_load

COMPLETE = "COMPLETE"
RECORD = "run.json"


class CheckpointError(ModelCheckpointError):
    """A training checkpoint cannot be resumed from: it is refused, or it does not fit this run."""


def _safe_globals() -> list:
    """DeepSpeed's data classes in ZeRO 1/2 optimizer states: plain attribute holders
    (loss scalers, an enum, a dataclass), rebuilt without running code of theirs."""
    return [LossScaler, DynamicLossScaler, ZeroStageEnum, fragment_address]


def safe_load(path: str | Path, map_location=None):
    """`torch.load(weights_only=True)` with `_safe_globals()` allowed; anything else is a
    `CheckpointError` naming the file, raised before the object is built."""
    try:
        return weights_only_load(path, map_location, _safe_globals())
    except ModelCheckpointError as e:
        raise CheckpointError(str(e)) from None


def weights_only_engine(engine) -> None:
    """Makes `engine.load_checkpoint` read every file with `safe_load` (DeepSpeed's torch
    checkpoint engine loads with `weights_only=False`)."""
    if type(engine.checkpoint_engine) is not TorchCheckpointEngine:
        raise CheckpointError(f"DeepSpeed chose the {type(engine.checkpoint_engine).__name__}; avvp_dist loads "
                              "checkpoints only through the torch one (weights_only=True)")

    class WeightsOnlyCheckpointEngine(TorchCheckpointEngine):
        weights_only = True

        def load(self, path: str, map_location=None):
            return safe_load(path, map_location)

    safe = WeightsOnlyCheckpointEngine.__new__(WeightsOnlyCheckpointEngine)
    safe.__dict__.update(engine.checkpoint_engine.__dict__)
    engine.checkpoint_engine = safe


def check_fits(path: Path, record: dict) -> None:
    """Refuses a checkpoint whose `run.json` differs from this run's `record` (model
    config, features, classes, world size), naming each difference; before any loading."""
    file = path / RECORD
    if not file.is_file():
        raise CheckpointError(f"{file}: missing; the checkpoint was written by an older avvp_dist")
    try:
        saved = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{file}: not valid JSON ({e}); the checkpoint's record is damaged: resume from "
                              "another checkpoint (train.resume=<folder>)") from None
    if not isinstance(saved, dict):
        raise CheckpointError(f"{file}: holds a {type(saved).__name__}, not the checkpoint's record")
    diffs = []
    for key, now in record.items():
        then = saved.get(key)
        if isinstance(now, dict) and isinstance(then, dict):
            diffs += [f"{key}.{k}: checkpoint {then.get(k)!r}, this run {now.get(k)!r}"
                      for k in sorted(set(now) | set(then)) if then.get(k) != now.get(k)]
        elif then != now:
            diffs.append(f"{key}: checkpoint {then!r}, this run {now!r}")
    if diffs:
        raise CheckpointError(f"{path}: does not fit this run: " + "; ".join(diffs) +
                              ". Resume with the settings it was written with, or start a fresh run (train.resume='')")


def tag(step: int) -> str:
    return f"step_{step:07d}"


def complete_checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoint folders, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("step_*") if (p / COMPLETE).is_file())


def clear_incomplete(run_dir: Path) -> list[str]:
    """Removes the checkpoint folders without `COMPLETE` (a crash while saving); returns their
    names. Rank 0 calls it at start, before any rank writes a checkpoint."""
    gone = [p for p in sorted((run_dir / "checkpoints").glob("step_*")) if p.is_dir() and not (p / COMPLETE).is_file()]
    for p in gone:
        shutil.rmtree(p, ignore_errors=True)
    return [p.name for p in gone]


def find_resume(run_dir: Path, resume: str) -> Path | None:
    """The checkpoint folder to resume from: `auto` = newest complete one (None if none)."""
    if not resume:
        return None
    if resume == "auto":
        found = complete_checkpoints(run_dir / "checkpoints")
        return found[-1] if found else None
    path = Path(resume)
    if not (path / COMPLETE).is_file():
        raise CheckpointError(f"{path}: not a complete checkpoint (no {COMPLETE} marker"
                              + (")" if path.is_dir() else "; no such folder)"))
    return path


def save(engine, run_dir: Path, step: int, client_state: dict, rank_state: dict, rank: int, keep: int,
         record: dict) -> Path:
    """Every rank calls this at the same step; returns the checkpoint folder. `record`: what
    the checkpoint fits (`check_fits`), written by rank 0 as its `run.json`."""
    root = run_dir / "checkpoints"
    path = root / tag(step)
    if rank == 0 and path.exists():  # a rewrite (a resume from an older step): never under an old COMPLETE
        (path / COMPLETE).unlink(missing_ok=True)
        shutil.rmtree(path, ignore_errors=True)
    if dist.is_initialized():
        dist.barrier()
    engine.save_checkpoint(str(root), tag=tag(step), client_state=client_state, save_latest=False)
    torch.save(rank_state, path / f"rank_{rank}.pt.tmp")
    os.replace(path / f"rank_{rank}.pt.tmp", path / f"rank_{rank}.pt")
    if dist.is_initialized():
        dist.barrier()
    if rank == 0:
        (path / RECORD).write_text(json.dumps(record, indent=1))
        (path / COMPLETE).write_text(f"{step}\n")
        (root / "latest.tmp").write_text(tag(step))
        os.replace(root / "latest.tmp", root / "latest")
        for old in complete_checkpoints(root)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    if dist.is_initialized():
        dist.barrier()
    return path


def load(engine, path: Path, rank: int) -> tuple[dict, dict]:
    """(client_state, this rank's state) from a complete checkpoint folder, every file read
    with `weights_only=True` (the engine must have gone through `weights_only_engine`)."""
    if not getattr(engine.checkpoint_engine, "weights_only", False):
        raise CheckpointError("the engine would load with weights_only=False: call weights_only_engine(engine) first")
    rank_file = path / f"rank_{rank}.pt"
    if not rank_file.is_file():
        raise CheckpointError(f"{rank_file}: missing; was the checkpoint written with another world size?")
    rank_state = safe_load(rank_file)
    _, client_state = engine.load_checkpoint(str(path.parent), tag=path.name)
    return client_state or {}, rank_state
