"""Running the real training command from tests: tiny data, tiny model, real launchers."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import synth_and_shard
from dist_helpers import free_port

TINY = ["model.d_model=16", "model.ffn_dim=16", "model.embed_dim=8", "data.batch_size=4", "data.num_workers=1",
        "train.eval_every=0", "train.plots=1", "train.log_every=1", "train.warmup_steps=2",
        "method.ramp_start=2", "method.ramp_steps=2", "method.pseudo.tau_min=0.3", "method.cma.enabled=true"]


def make_shards(folder: Path) -> Path:
    """Tiny synthetic LLP data and shards under `folder`; returns the shard folder."""
    return synth_and_shard(folder)


def train_cmd(nproc: int | None, run_dir: Path, shards: Path, *overrides: str) -> list[str]:
    base = ["-m", "avvp_dist.cli", "train", f"run_dir={run_dir}", f"data.shards={shards}", *TINY, *overrides]
    if nproc is None:
        return [sys.executable, *base]
    return [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--master_addr=127.0.0.1",
            f"--master_port={free_port()}", "--monitor_interval=0.5", *base]


def run(cmd: list[str], timeout: float = 240, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def losses(run_dir: Path) -> dict[int, float]:
    from avvp_dist.engine.logger import read_records

    return {r["step"]: r["loss"] for r in read_records(run_dir / "metrics.jsonl") if r["kind"] == "train"}
