"""Each rank on its own GPU: the index rule under every launcher, and the order in which a
rank binds it (before its process group, its first collective and DeepSpeed), recorded on a
CPU made to look like a 4-GPU node (tests/bind_worker.py)."""
import pytest

from avvp_dist.distributed.device import device_index
from avvp_dist.distributed.env import discover
from avvp_dist.launch.slurm_plan import device_column
from conftest import synth_and_shard
from dist_helpers import run_world

LAUNCHERS = {  # what each launcher sets for the task with local rank 2 on a 4-rank node
    "torchrun": {"RANK": "6", "WORLD_SIZE": "8", "LOCAL_RANK": "2", "LOCAL_WORLD_SIZE": "4"},
    "accelerate": {"RANK": "6", "WORLD_SIZE": "8", "LOCAL_RANK": "2", "LOCAL_WORLD_SIZE": "4",
                   "ACCELERATE_MIXED_PRECISION": "bf16"},
    "srun": {"SLURM_PROCID": "6", "SLURM_NTASKS": "8", "SLURM_LOCALID": "2", "SLURM_TASKS_PER_NODE": "4(x2)",
             "SLURM_NODEID": "1"},
    "submitit-local": {"SUBMITIT_LOCAL_GLOBAL_RANK": "6", "SUBMITIT_LOCAL_NTASKS": "8", "SUBMITIT_LOCAL_LOCALID": "2"},
    "submitit-slurm": {"RANK": "6", "WORLD_SIZE": "8", "LOCAL_RANK": "2", "LOCAL_WORLD_SIZE": "4",
                       "SUBMITIT_EXECUTOR": "slurm"},
}


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_every_launcher_binds_its_local_rank_or_the_one_gpu_it_sees(launcher):
    local = discover(LAUNCHERS[launcher]).local_rank
    assert device_index(local, visible=4) == 2  # one rank per GPU of the node
    assert device_index(local, visible=1) == 0  # the scheduler shows each task its own GPU


def test_a_local_rank_past_the_visible_gpus_is_an_error_naming_both():
    assert [device_index(r, 4) for r in range(4)] == [0, 1, 2, 3]
    with pytest.raises(RuntimeError, match="local rank 4 but this process sees 2 GPUs"):
        device_index(4, 2)


def test_the_dry_run_prints_the_same_binding():
    node = {"SLURM_GPUS_PER_NODE": "a100:4"}
    assert [device_column(r, node) for r in range(2)] == ["CUDA device 0 of the 4 it sees",
                                                          "CUDA device 1 of the 4 it sees"]
    assert device_column(3, {**node, "SLURM_GPUS_PER_TASK": "1"}) == "CUDA device 0 of the 1 it sees"
    assert device_column(5, node).startswith("no CUDA device: local rank 5 but this process sees 4 GPUs")


@pytest.fixture(scope="module")
def tiny_shards(tmp_path_factory):
    return synth_and_shard(tmp_path_factory.mktemp("bind"))


@pytest.mark.timeout(180)
@pytest.mark.parametrize("world,visible", [(2, 4), (4, 4), (2, 1)])
def test_each_rank_binds_its_gpu_before_its_group_collectives_and_deepspeed(tiny_shards, tmp_path, world, visible):
    logs = run_world("bind_worker.py", world, {"visible": visible, "run_dir": str(tmp_path / "run"),
                                               "shards": str(tiny_shards)}, tmp_path, timeout=150)
    for rank, events in enumerate(logs):
        want = rank if visible > 1 else 0
        kinds = [e[0] for e in events]
        # the device first, then the group on it, then collectives on it, then DeepSpeed given it
        assert events[0] == ["set_device", want], events
        assert events[1] == ["init_process_group", "nccl", f"cuda:{want}"], events
        collectives = [e for e in events if e[0] == "collective"]
        assert collectives and all(e == ["collective", f"cuda:{want}"] for e in collectives), events
        assert kinds[-1] == "deepspeed" and events[-1] == ["deepspeed", want], events
        assert all(e[1] == want for e in events if e[0] == "set_device"), events
