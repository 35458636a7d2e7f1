"""Running the real training command from tests: tiny data, tiny model, real launchers."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import synth_and_shard
from dist_helpers import free_port

# data.batch_size per rank, also under a recipe file that states a global batch (train.global_batch=0)
TINY = ["model.d_model=16", "model.ffn_dim=16", "model.embed_dim=8", "data.batch_size=4", "train.global_batch=0",
        "data.num_workers=1",
        "train.eval_every=0", "train.plots=1", "train.log_every=1", "train.warmup_steps=2",
        "method.ramp_start=2", "method.ramp_steps=2", "method.pseudo.tau_min=0.3", "method.cma.enabled=true"]
# AVVP_TEST_COMPILE=1: every training run of the tests with train.compile=true. Not in CI (each
# process compiles for about 20 s here); run by hand, results in benchmarks/RESULTS.md.
COMPILE = os.environ.get("AVVP_TEST_COMPILE") == "1"
TINY += ["train.compile=true"] * COMPILE


def make_shards(folder: Path) -> Path:
    """Tiny synthetic LLP data and shards under `folder`; returns the shard folder."""
    return synth_and_shard(folder)


def train_cmd(nproc: int | None, run_dir: Path, shards: Path, *overrides: str, script: str | None = None) -> list[str]:
    """The training command (`avvp-dist train`, or `script train` with a test hook such as
    tests/nan_train.py) on `nproc` ranks under torchrun, or as a plain process (None)."""
    base = [*([script] if script else ["-m", "avvp_dist.cli"]), "train", f"run_dir={run_dir}", f"data.shards={shards}", *TINY, *overrides]
    if nproc is None:
        return [sys.executable, *base]
    return [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--master_addr=127.0.0.1",
            f"--master_port={free_port()}", "--monitor_interval=0.5", *base]


def run(cmd: list[str], timeout: float = 240, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def losses(run_dir: Path) -> dict[int, float]:
    from avvp_dist.engine.logger import read_records

    return {r["step"]: r["loss"] for r in read_records(run_dir / "metrics.jsonl") if r["kind"] == "train"}


def launch_ranks(world: int, run_dir: Path, shards: Path, *overrides: str) -> list[subprocess.Popen]:
    """The training command started as `world` ranks by hand, with the variables torchrun sets
    (RANK, WORLD_SIZE, LOCAL_*, MASTER_*, OMP_NUM_THREADS=1), so that each rank's own exit
    code is seen: under torchrun only torchrun's is."""
    import os

    port = free_port()
    procs = []
    for rank in range(world):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                   LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1")
        procs.append(subprocess.Popen(train_cmd(None, run_dir, shards, *overrides), env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, start_new_session=True))
    return procs
