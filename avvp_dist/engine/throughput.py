"""The throughput's bookkeeping: training seconds and steps, validation, checkpoints and compile warm-up left out."""
from __future__ import annotations

import time
from contextlib import contextmanager

COMPILE_WARMUP_STEPS = 3  # left out of the throughput with train.compile


class Throughput:
    """Counts from `step` on. Time spent `in overhead()` (validation, checkpoints) is not
    training time; with `warmup` steps (train.compile: they compile, and recompile once
    shapes vary) the count starts again after them."""

    def __init__(self, step: int, max_steps: int, warmup: int = 0):
        self.t0, self.start_step, self.max_steps = time.perf_counter(), step, max_steps
        self.overhead_s, self.warmup = 0.0, warmup

    @contextmanager
    def overhead(self):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.overhead_s += time.perf_counter() - t0

    def after_step(self, step: int) -> None:
        """Called after each optimizer step applied: ends the warm-up when it is over (one step
        before the end at the latest, so that something is measured)."""
        if self.warmup and step - self.start_step == min(self.warmup, self.max_steps - self.start_step - 1):
            self.t0, self.start_step, self.overhead_s, self.warmup = time.perf_counter(), step, 0.0, 0

    def steps(self, step: int) -> int:
        """Optimizer steps measured, at `step`."""
        return step - self.start_step

    def seconds(self) -> float:
        """Training seconds measured so far."""
        return time.perf_counter() - self.t0 - self.overhead_s
