"""Where each rank runs, and whether it sees what the job shares: checked before training.

A job on several nodes needs the run folder (checkpoints, logs, the records) and the shards
on storage that every node sees. A node that does not would fail later, alone, while the
other ranks wait for it in a collective; so every rank checks first, and the job stops with
one message, on every rank, naming each node that cannot see the run folder or the shards.

- The run folder: rank 0 creates it and writes a fresh token into it; every rank reads the
  token back. A node that sees no folder there, or a node-local folder of the same name
  (another token, or none), is named.
- The shards (a local root): every rank finds each split's manifest. When no rank finds
  them the path is wrong rather than unshared, and the shard reader says so; a URL root is
  read the same way by every rank, and the stream names what it cannot read.
A lone process has nothing to compare with and checks nothing.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
from pathlib import Path

from avvp_dist.data.location import Location, is_url
from avvp_dist.data.shards import MANIFEST
from avvp_dist.distributed.collectives import all_gather_bytes, world_size
from avvp_dist.distributed.env import DistEnv

TOKEN = ".visible"
SPLITS = ("train", "val", "test")


class NotVisible(RuntimeError):
    """Some rank cannot see the run folder or the shards; the message names its node."""


def this_rank(env: DistEnv, threads: int) -> dict:
    """Where this rank runs: its node (SLURM's name for it, else the host name), the host,
    SLURM's node index, its local rank and its torch threads."""
    host = socket.gethostname()
    return {"rank": env.rank, "local_rank": env.local_rank, "node": os.environ.get("SLURMD_NODENAME") or host,
            "host": host, "slurm_nodeid": os.environ.get("SLURM_NODEID"), "threads": threads}


def _problems(run_dir: Path, shards: Location, token: str) -> dict[str, list[str]]:
    """What this rank cannot see: {"run": [...], "shards": [...]}."""
    out: dict[str, list[str]] = {"run": [], "shards": []}
    other = "another folder of that name than the one rank 0 sees (node-local storage?)"
    try:
        if (run_dir / TOKEN).read_text() != token:
            out["run"].append(f"run folder {run_dir}: {other}")
    except FileNotFoundError:
        out["run"].append(f"run folder {run_dir}: {other if run_dir.is_dir() else 'No such file or directory'}")
    except OSError as e:
        out["run"].append(f"run folder {run_dir}: {e.strerror or e}")
    if not is_url(shards):
        for split in SPLITS:
            path = Path(shards) / split / MANIFEST
            if not path.is_file():
                out["shards"].append(f"shards: {path} not found")
    return out


def check_visible(run_dir: Path, shards: Location, me: dict) -> list[dict]:
    """Every rank's `me` (`this_rank`), in rank order, once every rank has seen the run folder
    and the shards; raises `NotVisible` on every rank, naming each rank and node that cannot.
    A collective: every rank of the default group calls it."""
    if world_size() == 1:
        return [me]
    offer = b""
    if me["rank"] == 0:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            offer = secrets.token_hex(16).encode()
            (run_dir / TOKEN).write_bytes(offer)
        except OSError as e:
            offer = b"!" + f"rank 0 cannot write to run folder {run_dir}: {e.strerror or e}".encode()
    token = all_gather_bytes(offer)[0].decode()
    if token.startswith("!"):
        raise NotVisible(token[1:])
    # where each rank runs and what it cannot see, in one gather
    mine = {**me, **_problems(run_dir, shards, token)}
    reports = [json.loads(b) for b in all_gather_bytes(json.dumps(mine).encode())]
    if me["rank"] == 0:
        (run_dir / TOKEN).unlink(missing_ok=True)  # every rank has read it: the gather above waited for them
    if all(r["shards"] for r in reports):  # seen nowhere: a wrong path, which the shard reader names
        for r in reports:
            r["shards"] = []
    lines = [f"  node {r['node']} (rank {r['rank']}): {line}" for r in reports for line in r["run"] + r["shards"]]
    if lines:
        raise NotVisible("not every node sees what the job shares; put the run folder and the shards on storage "
                         "every node mounts at the same path:\n" + "\n".join(lines))
    return [{k: v for k, v in r.items() if k not in ("run", "shards")} for r in reports]
