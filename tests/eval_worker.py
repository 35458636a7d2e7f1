"""One rank of the sharded-evaluation test: metrics of a checkpoint on a split."""
import json
import sys

from avvp_dist.data.config import DataConfig
from avvp_dist.distributed.env import discover
from avvp_dist.distributed.group import init_distributed
from avvp_dist.eval.run import evaluate

args = json.load(open(sys.argv[1]))
env = discover()
init_distributed(env)
result = evaluate({"m": args["checkpoint"]}, args["shards"], DataConfig(batch_size=3, num_workers=args["workers"]),
                  args["split"], rank=env.rank, world_size=env.world_size)
rep = result["models"]["m"]
json.dump({"metrics": rep["metrics"], "keys": rep["predictions"]["keys"]}, open(args["out"], "w"))
if env.world_size > 1:
    import torch.distributed as dist
    dist.barrier()
    dist.destroy_process_group()
