"""Starting real multi-process jobs from tests: one Python process per rank, env like torchrun."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_world(script: str, world: int, args: dict, tmp: Path, tag: str = "job", timeout: float = 240,
              threads: int = 1) -> list[dict]:
    """Runs `script ARGS.json` as ranks 0..world-1 of one job; returns each rank's JSON output
    (`args["out"]` is set per rank). Fails with every rank's stderr if any rank fails."""
    port = free_port()
    procs = []
    for rank in range(world):
        a = dict(args, out=str(tmp / f"{tag}-out{rank}.json"), rank=rank, world=world)
        path = tmp / f"{tag}-args{rank}.json"
        path.write_text(json.dumps(a))
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                   LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                   OMP_NUM_THREADS=str(threads), PYTHONPATH=str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        procs.append(subprocess.Popen([sys.executable, str(HERE / script), str(path)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=timeout)[0])
    finally:
        for p in procs:
            p.kill()
    if any(p.returncode for p in procs):
        raise AssertionError("\n".join(f"--- rank {r} (exit {p.returncode}):\n{log[-4000:]}"
                                       for r, (p, log) in enumerate(zip(procs, logs))))
    return [json.loads((tmp / f"{tag}-out{r}.json").read_text()) for r in range(world)]
