"""The one training entry of every launcher: config in, exit code out.

`avvp-dist train` (and so `slurm/train.sh` and the demo), the accelerate recipes and the
submitit job all end in `train_command`, so they check the config the same way and map
outcomes to the same exit codes (`engine.stop`): 0 done, 2 bad config, data or checkpoint
(the message names the key or file), or a run folder or shards that some node cannot see
(the message names the node), 3 preempted after a complete checkpoint (requeue me), 4
stopped after too many non-finite losses, 143 stopped by SIGTERM after a complete checkpoint
(do not requeue). The launcher provides the rendezvous (MASTER_ADDR, MASTER_PORT).
"""
from __future__ import annotations

import logging
import sys

from avvp_dist.config import ConfigError, load_config
from avvp_dist.data.annotations import AnnotationError
from avvp_dist.data.features import FeatureError
from avvp_dist.data.shards import ShardError
from avvp_dist.engine.checkpoint import CheckpointError
from avvp_dist.engine.placement import NotVisible
from avvp_dist.engine.stop import EXIT_BAD_INPUT, EXIT_STOPPED, TrainingStopped
from avvp_dist.engine.trainer import train


def train_command(config: str | None, overrides: list[str], prog: str = "avvp-dist train") -> int:
    """Loads and checks the config, trains, and returns the process exit code."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return train(load_config(config, overrides))
    except TrainingStopped as e:
        print(f"{prog}: stopped: {e}", file=sys.stderr, flush=True)
        return EXIT_STOPPED
    except (ConfigError, AnnotationError, FeatureError, ShardError, CheckpointError, NotVisible) as e:
        print(f"{prog}: error: {e}", file=sys.stderr, flush=True)
        return EXIT_BAD_INPUT
