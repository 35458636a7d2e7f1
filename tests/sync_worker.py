"""One rank of the host-sync count (test_host_syncs.py): trains `steps` steps with every host
read of a tensor counted by call site, and writes the counts."""
from __future__ import annotations

import collections
import json
import sys
import traceback

import torch

READS = ("item", "tolist", "cpu", "nonzero", "__bool__", "__int__", "__float__")


def site() -> str:
    """The innermost caller outside torch and this file: `avvp_dist/...py:function`."""
    for frame in reversed(traceback.extract_stack()[:-2]):
        path = frame.filename.replace("\\", "/")
        if "/torch/" in path or path.endswith("sync_worker.py"):
            continue
        for root in ("avvp_dist/", "deepspeed/"):
            if root in path:
                return f"{root}{path.rsplit(root, 1)[1]}:{frame.name}"
        return f"{path}:{frame.name}"
    return "?"


def main(args: dict) -> None:
    from avvp_dist.config import load_config
    from avvp_dist.engine.build import build_run
    from avvp_dist.engine.trainer import Trainer

    counts: collections.Counter = collections.Counter()
    trainer = Trainer(build_run(load_config(None, args["overrides"])))
    for name in READS:  # after start-up: only what training does is counted
        original = getattr(torch.Tensor, name)

        def counted(self, *a, _original=original, **kw):
            counts[site()] += 1
            return _original(self, *a, **kw)

        setattr(torch.Tensor, name, counted)
    assert trainer.run() == 0
    with open(args["out"], "w") as f:
        json.dump(dict(counts), f)


if __name__ == "__main__":
    main(json.load(open(sys.argv[1])))
