"""`avvp-dist ARGS` with SIGUSR2 (SLURM's and submitit's preemption signal) raised in the middle
of start-up, as DeepSpeed starts: the fault comes from outside the product.

    python tests/signal_at_start.py train ...
"""
import os
import signal
import sys

import deepspeed

_initialize = deepspeed.initialize


def initialize(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGUSR2)
    return _initialize(*args, **kwargs)


deepspeed.initialize = initialize

if __name__ == "__main__":
    from avvp_dist.cli import main

    sys.exit(main(sys.argv[1:]))
