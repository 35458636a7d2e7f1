"""Before training, every rank checks that it sees the run folder and the shards; a node
that does not is named, and the job stops on every rank before any step. The node that
cannot see them is real: rank 1 runs in its own mount and UTS namespaces (as root), with
its own host name and empty folders mounted over the data and the runs, as on a node
whose storage is local."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys

import pytest

from avvp_dist.distributed.env import DistEnv
from avvp_dist.engine.placement import check_visible, this_rank
from dist_helpers import free_port
from train_helpers import TINY, make_shards


def test_a_lone_process_has_nothing_to_compare(tmp_path):
    me = this_rank(DistEnv(0, 1, 0, "single"), 2)
    assert me["node"] == os.environ.get("SLURMD_NODENAME", socket.gethostname()) and me["threads"] == 2
    assert check_visible(tmp_path / "run", tmp_path / "no-shards", me) == [me]  # the shard reader names the path
    assert not (tmp_path / "run").exists()


def _can_unshare() -> str | None:
    if shutil.which("unshare") is None:
        return "unshare not found"
    probe = subprocess.run(["unshare", "--mount", "--uts", "true"], capture_output=True, text=True)
    return None if probe.returncode == 0 else f"unshare --mount --uts refused ({probe.stderr.strip()}): needs root"


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("storage", ["nothing", "own run folder", "no shards anywhere"])
def test_a_node_that_cannot_see_the_run_folder_and_shards_is_named(tmp_path, storage):
    """`nothing`: node-b sees neither the runs nor the data; `own run folder`: it sees the data
    but has a node-local folder at the run folder's path; `no shards anywhere`: no node sees
    them (a wrong path), which the shard reader names."""
    reason = _can_unshare()
    if reason:
        pytest.skip(reason)
    shards = make_shards(tmp_path / "data")
    if storage == "no shards anywhere":
        shards = tmp_path / "data" / "typo"
    runs = tmp_path / "runs"
    runs.mkdir()
    run_dir = runs / "run"
    cmd = [sys.executable, "-m", "avvp_dist.cli", "train", f"run_dir={run_dir}", f"data.shards={shards}",
           "train.max_steps=5", "train.threads=1", *TINY]
    port = free_port()
    procs = []
    for rank in range(2):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK="0", LOCAL_WORLD_SIZE="1",
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        env.pop("SLURMD_NODENAME", None)
        argv = cmd
        if rank == 1:  # another host: its own name, and node-local folders where the data and the runs are
            script = {"nothing": f"mount -t tmpfs tmpfs {runs} && mount -t tmpfs tmpfs {tmp_path / 'data'}",
                      "own run folder": f"mount -t tmpfs tmpfs {runs} && mkdir {run_dir}",
                      "no shards anywhere": "true"}[storage]
            script = f'hostname node-b && {script} && exec "$@"'
            argv = ["unshare", "--mount", "--uts", "--propagation", "private", "sh", "-c", script, "sh", *cmd]
        procs.append(subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    try:
        outs = [p.communicate(timeout=240)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [2, 2], "\n".join(o[-3000:] for o in outs)
    if storage == "no shards anywhere":
        for out in outs:
            assert f"error: {shards / 'train'}" in out and "not every node" not in out, out[-3000:]
        return
    for out in outs:  # the same message on both ranks: the node, the rank and what it cannot see
        assert "not every node sees what the job shares" in out, out[-3000:]
        if storage == "nothing":
            assert f"node node-b (rank 1): run folder {run_dir}: No such file or directory" in out, out[-3000:]
            for split in ("train", "val", "test"):
                assert f"node node-b (rank 1): shards: {shards / split / 'manifest.json'} not found" in out
        else:
            assert f"node node-b (rank 1): run folder {run_dir}: another folder of that name" in out, out[-3000:]
            assert "shards:" not in out
        assert "(rank 0)" not in out
    assert not (run_dir / "metrics.jsonl").exists() and not (run_dir / "checkpoints").exists()
    assert not (run_dir / ".visible").exists()
