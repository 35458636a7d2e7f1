"""`avvp-dist ARGS`, each rank killed (SIGKILL) right after DeepSpeed has written its part of
the checkpoint named by AVVP_TEST_KILL_AT_TAG: a crash in the middle of a save, before the
per-rank files, the record and COMPLETE. The fault comes from outside the product.

    AVVP_TEST_KILL_AT_TAG=step_0000300 torchrun ... tests/kill_in_save.py train ...
"""
import os
import signal
import sys

from deepspeed.runtime.engine import DeepSpeedEngine

_save = DeepSpeedEngine.save_checkpoint


def save_checkpoint(self, save_dir, tag=None, *args, **kwargs):
    out = _save(self, save_dir, tag, *args, **kwargs)
    if tag == os.environ.get("AVVP_TEST_KILL_AT_TAG"):
        os.kill(os.getpid(), signal.SIGKILL)
    return out


DeepSpeedEngine.save_checkpoint = save_checkpoint

if __name__ == "__main__":
    from avvp_dist.cli import main

    sys.exit(main(sys.argv[1:]))
