"""One rank of the device-binding test: `build_run` on a CPU made to look like a node with
`visible` GPUs, recording, in order, every device selection, the process group's start, each
collective's device and DeepSpeed's start (where it stops: nothing past it is needed).

Recording stand-ins: `torch.cuda` reports `visible` devices and remembers `set_device`;
`init_process_group` records its backend and device, then starts the real gloo group (so the
collectives run); the group reports itself as NCCL, and `collective_device` records the device
the collectives ask for and hands them the CPU; `deepspeed.initialize` records the device it
is given and stops the build."""
import json
import sys

import deepspeed
import torch
import torch.distributed as dist

from avvp_dist.config import load_config
from avvp_dist.distributed import collectives
from avvp_dist.engine import build

args = json.load(open(sys.argv[1]))
events: list = []
bound = {"index": None}


class Stop(Exception):
    pass


def set_device(index):
    bound["index"] = int(index)
    events.append(["set_device", int(index)])


def current_device():
    if bound["index"] is None:
        raise AssertionError("a CUDA device was asked for before one was bound")
    return bound["index"]


real_init, real_device = dist.init_process_group, collectives.collective_device


def init_process_group(backend, **kw):
    device = kw.pop("device_id", None)
    events.append(["init_process_group", backend, None if device is None else str(device)])
    real_init("gloo", **kw)


def collective_device():
    device = real_device()
    events.append(["collective", str(device)])
    return torch.device("cpu")


def initialize(args=None, **kw):
    events.append(["deepspeed", getattr(args, "device_rank", None)])
    raise Stop


torch.cuda.is_available = lambda: True
torch.cuda.device_count = lambda: args["visible"]
torch.cuda.set_device = set_device
torch.cuda.current_device = current_device
dist.init_process_group = init_process_group
dist.get_backend = lambda group=None: "nccl"
collectives.collective_device = collective_device
deepspeed.initialize = initialize
cfg = load_config(None, [f"run_dir={args['run_dir']}", f"data.shards={args['shards']}", "train.precision=fp32",
                         "data.batch_size=2", "model.d_model=16", "model.ffn_dim=16"])
try:
    build.build_run(cfg)
except Stop:
    pass
json.dump(events, open(args["out"], "w"))
dist.barrier()
dist.destroy_process_group()
