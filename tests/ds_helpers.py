"""DeepSpeed engines inside the test process: one process group of one for the whole session."""
from __future__ import annotations

import contextlib
import os

import torch.distributed as dist

from avvp_dist.distributed.env import discover, rendezvous
from avvp_dist.distributed.group import init_distributed


@contextlib.contextmanager
def lone_group():
    """A process group of one (an in-memory store), started once per test process and kept:
    DeepSpeed caches the group, so a destroyed and restarted one breaks later engines.
    `init_distributed` sets RANK, MASTER_* in os.environ, which later subprocesses of the test
    session must not inherit: they are put back after each use."""
    environ = dict(os.environ)
    if not dist.is_initialized():
        init_distributed(discover({}))
    os.environ.update(rendezvous(discover({}), {}))  # DeepSpeed reads LOCAL_RANK and the rest
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(environ)
