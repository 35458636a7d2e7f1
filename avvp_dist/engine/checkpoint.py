"""Training checkpoints: DeepSpeed's sharded state plus our per-rank state, written atomically.

Layout: `<run_dir>/checkpoints/step_NNNNNNN/` holds DeepSpeed's files (every rank writes
its ZeRO part), `rank_R.pt` per rank (stream position, RNG state: written by us,
loadable with `weights_only=True`), and `COMPLETE`, written by rank 0 after a barrier
once every rank has finished. `latest` names the newest complete one and is replaced
atomically. A folder without `COMPLETE` (a crash while saving) is never resumed from.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
import torch.distributed as dist

COMPLETE = "COMPLETE"


def tag(step: int) -> str:
    return f"step_{step:07d}"


def complete_checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoint folders, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("step_*") if (p / COMPLETE).is_file())


def find_resume(run_dir: Path, resume: str) -> Path | None:
    """The checkpoint folder to resume from: `auto` = newest complete one (None if none)."""
    if not resume:
        return None
    if resume == "auto":
        found = complete_checkpoints(run_dir / "checkpoints")
        return found[-1] if found else None
    path = Path(resume)
    if not (path / COMPLETE).is_file():
        raise FileNotFoundError(f"{path}: not a complete checkpoint (no {COMPLETE} marker)")
    return path


def save(engine, run_dir: Path, step: int, client_state: dict, rank_state: dict, rank: int, keep: int) -> Path:
    """Every rank calls this at the same step; returns the checkpoint folder."""
    root = run_dir / "checkpoints"
    path = root / tag(step)
    engine.save_checkpoint(str(root), tag=tag(step), client_state=client_state, save_latest=False)
    torch.save(rank_state, path / f"rank_{rank}.pt.tmp")
    os.replace(path / f"rank_{rank}.pt.tmp", path / f"rank_{rank}.pt")
    if dist.is_initialized():
        dist.barrier()
    if rank == 0:
        (path / COMPLETE).write_text(f"{step}\n")
        (root / "latest.tmp").write_text(tag(step))
        os.replace(root / "latest.tmp", root / "latest")
        for old in complete_checkpoints(root)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    if dist.is_initialized():
        dist.barrier()
    return path


def load(engine, path: Path, rank: int) -> tuple[dict, dict]:
    """(client_state, this rank's state) from a complete checkpoint folder."""
    _, client_state = engine.load_checkpoint(str(path.parent), tag=path.name)
    rank_file = path / f"rank_{rank}.pt"
    if not rank_file.is_file():
        raise FileNotFoundError(f"{rank_file}: missing; was the checkpoint written with another world size?")
    return client_state or {}, torch.load(rank_file, weights_only=True)
