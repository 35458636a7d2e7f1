"""Per-step section timers for the throughput benchmark (`train.profile=true`).

    timer = StepTimer(sync=torch.cuda.synchronize)       # or NULL_TIMER: costs nothing
    with timer.section("teacher_forward"):
        ...
    timer.end_step()                                     # closes one step's record

Sections may be entered several times per step (micro-steps); their times add up.
"""
from __future__ import annotations

import statistics
import time
from contextlib import contextmanager, nullcontext
from typing import Callable


class StepTimer:
    def __init__(self, sync: Callable[[], None] | None = None):
        self.sync = sync  # e.g. torch.cuda.synchronize, so GPU work lands in its own section
        self.steps: list[dict[str, float]] = []
        self._current: dict[str, float] = {}
        self._step_start = time.perf_counter()

    @contextmanager
    def section(self, name: str):
        if self.sync:
            self.sync()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            if self.sync:
                self.sync()
            self._current[name] = self._current.get(name, 0.0) + time.perf_counter() - t0

    def end_step(self) -> None:
        now = time.perf_counter()
        self._current["step"] = now - self._step_start
        self.steps.append(self._current)
        self._current, self._step_start = {}, now

    def summary(self, skip: int = 0, stat: Callable = statistics.median) -> dict[str, float]:
        """Seconds per step of each section (`stat`: the median, or e.g. `statistics.fmean`)
        over the steps after the first `skip`; `other` is the step time no section accounts
        for (logging, the stop-signal agreement, the data not yet asked for)."""
        steps = self.steps[skip:]
        if not steps:
            return {}
        names = sorted({k for s in steps for k in s})
        out = {k: stat([s.get(k, 0.0) for s in steps]) for k in names}
        out["other"] = stat([s["step"] - sum(v for k, v in s.items() if k != "step") for s in steps])
        out["measured_steps"] = len(steps)
        return out


class _NullTimer:
    def section(self, name: str):
        return nullcontext()

    def end_step(self) -> None:
        pass


NULL_TIMER = _NullTimer()
