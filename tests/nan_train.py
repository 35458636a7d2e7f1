"""`avvp-dist ARGS` with rank 0's loss made non-finite at chosen micro-steps, for the engine's
non-finite tests: the fault comes from outside the product, which has no knob for it.

    AVVP_TEST_NAN_STEPS=3,4,5 torchrun ... tests/nan_train.py train ...

The steps count this process's micro-steps from 1 (a fresh run: the same as the run's).
"""
import os
import sys

from avvp_dist.engine import trainer
from avvp_dist.method.objective import StepLosses

STEPS = {int(s) for s in os.environ.get("AVVP_TEST_NAN_STEPS", "").split(",") if s}
_original, _calls = trainer.step_losses, [0]


def poisoned(*args, **kwargs) -> StepLosses:
    result = _original(*args, **kwargs)
    _calls[0] += 1
    if _calls[0] in STEPS and int(os.environ.get("RANK", "0")) == 0:
        result = StepLosses(result.loss * float("nan"), result.terms)
    return result


trainer.step_losses = poisoned

if __name__ == "__main__":
    from avvp_dist.cli import main

    sys.exit(main(sys.argv[1:]))
