"""Multi-node on one machine: two torchrun launchers, one process each, forming a 2-node
job through a c10d rendezvous on localhost, train to exactly what one node with two
processes trains. The evidence that the multi-node path works before anyone has a cluster."""
import json
import subprocess
import sys

import pytest
import torch

from avvp_dist.model.checkpoint import load_model
from dist_helpers import free_port
from train_helpers import TINY, make_shards

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
STEPS = 60


def _train(run_dir, shards) -> list[str]:
    return ["-m", "avvp_dist.cli", "train", f"run_dir={run_dir}", f"data.shards={shards}", f"train.max_steps={STEPS}",
            "train.threads=1", *TINY]


def test_two_nodes_of_one_process_equal_one_node_of_two(tmp_path):
    shards = make_shards(tmp_path / "data")
    one = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
                          "--master_addr=127.0.0.1", f"--master_port={free_port()}",
                          *_train(tmp_path / "one_node", shards)], capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]

    port = free_port()
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1",
                               "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{port}", "--rdzv_id=avvp-test",
                               "--monitor_interval=0.5", *_train(tmp_path / "two_nodes", shards)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    try:
        outs = [p.communicate(timeout=300)[0] for p in nodes]
    finally:
        for p in nodes:
            p.kill()
    assert [p.returncode for p in nodes] == [0, 0], "\n".join(o[-2000:] for o in outs)

    record = json.loads((tmp_path / "two_nodes" / "run.json").read_text())
    assert record["world_size"] == 2
    for name in ("final_student.pt", "final_teacher.pt"):
        a = load_model(tmp_path / "one_node" / name)[0].state_dict()
        b = load_model(tmp_path / "two_nodes" / name)[0].state_dict()
        for k in a:
            assert torch.equal(a[k], b[k]), (name, k)
