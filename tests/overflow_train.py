"""`avvp-dist ARGS` with DeepSpeed reporting an fp16 overflow (a step not applied) at chosen
optimizer steps, the one part of the fp16 path a CPU can run: DeepSpeed refuses fp16 on a CPU,
so its loss scaler never runs here, and this hook stands in for what it tells the trainer.

    AVVP_TEST_OVERFLOW_AT=3,4 AVVP_TEST_OVERFLOW_OUT=counts.json python tests/overflow_train.py train ...

The numbers count `was_step_applied` calls from 1 (optimizer-step boundaries); at the end the
trainer's counters are written to AVVP_TEST_OVERFLOW_OUT.
"""
import json
import os
import sys

from deepspeed.runtime.engine import DeepSpeedEngine

from avvp_dist.engine import trainer

AT = {int(s) for s in os.environ.get("AVVP_TEST_OVERFLOW_AT", "").split(",") if s}
_calls = [0]
_applied = DeepSpeedEngine.was_step_applied


def was_step_applied(self) -> bool:
    _calls[0] += 1
    return False if _calls[0] in AT else _applied(self)


_end = trainer.Trainer._end


def end(self) -> None:
    state = self.state
    counts = {"boundaries": _calls[0], "step": state.step, "micro_step": state.micro_step,
              "ema_updates": self.teacher.num_updates if self.teacher is not None else None}
    with open(os.environ["AVVP_TEST_OVERFLOW_OUT"], "w") as f:
        json.dump(counts, f)
    _end(self)


DeepSpeedEngine.was_step_applied = was_step_applied
trainer.Trainer._end = end

if __name__ == "__main__":
    from avvp_dist.cli import main

    sys.exit(main(sys.argv[1:]))
