"""One rank of a streaming test, run as its own process: `python stream_worker.py ARGS.json`.

Rank and world come from the environment (RANK / WORLD_SIZE, as torchrun sets them).
Writes the keys of every batch, per epoch, and the epoch reports to ARGS["out"].
With ARGS["stop_after"], it stops mid-epoch and saves the stream state; with
ARGS["resume"], it restores that state first.
"""
import json
import sys

import torch

from avvp_dist.data.config import DataConfig
from avvp_dist.data.stream import ShardStream
from avvp_dist.distributed.env import discover


def main(args: dict) -> None:
    env = discover()
    cfg = DataConfig(**args["data"])
    stream = ShardStream(args["shards"], cfg, rank=env.rank, world_size=env.world_size, seed=args.get("seed", 0))
    if args.get("resume"):
        stream.load_state_dict(json.load(open(args["resume"])))
    out = {"rank": env.rank, "epochs": {}, "reports": [], "len": len(stream), "checksums": []}
    while stream.epoch < args["epochs"]:
        epoch, keys = stream.epoch, out["epochs"].setdefault(str(stream.epoch), [])
        for batch in stream:
            keys.append(batch.keys)
            # content check: toy sample sNNNN has feature a == NNNN on its valid steps
            a, mask = batch.features["a"], batch.mask
            idx = torch.tensor([int(k[1:]) for k in batch.keys], dtype=torch.float32)
            assert torch.equal(a[..., 0] * mask, idx[:, None] * mask), "features do not belong to their keys"
            assert torch.equal(a * ~mask[..., None], torch.zeros_like(a)), "padding is not zero"
            out["checksums"].append(float(a.sum()))
            if args.get("stop_after") and stream.batch == args["stop_after"] and epoch == args.get("stop_epoch", 0):
                json.dump(stream.state_dict(), open(args["state"], "w"))
                json.dump(out, open(args["out"], "w"))
                return
        out["reports"].append(stream.last_report)
    json.dump(out, open(args["out"], "w"))


if __name__ == "__main__":
    main(json.load(open(sys.argv[1])))
