"""Progress for people and for log files: tqdm's bar on a terminal; elsewhere (a SLURM task's
log, a pipe, a file) one plain line every `AVVP_PROGRESS_S` seconds (default 30) and a last
line with the count, the time and the rate. A bar redrawn with carriage returns fills a log
with one partial line per update."""
from __future__ import annotations

import os
import sys
import time
from typing import Iterable, Iterator

from tqdm import tqdm


class LineProgress:
    """The part of tqdm's interface the project uses (iteration, `update`, `set_postfix`,
    `write`, `close`), printed as plain lines."""

    def __init__(self, iterable: Iterable | None = None, total: int | None = None, initial: int = 0, desc: str = "",
                 unit: str = "it", file=None, interval_s: float | None = None):
        self.iterable, self.total, self.n, self.desc, self.unit = iterable, total, initial, desc, unit
        self.file = file if file is not None else sys.stderr
        self.interval = float(os.environ.get("AVVP_PROGRESS_S", "30")) if interval_s is None else interval_s
        self.start_n, self.t0 = initial, time.monotonic()
        self.t_last, self.postfix, self.closed = self.t0, "", False
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            self.total = len(iterable)

    def __iter__(self) -> Iterator:
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def _line(self, final: bool) -> str:
        seconds = time.monotonic() - self.t0
        rate = (self.n - self.start_n) / seconds if seconds > 0 else 0.0
        of = f"/{self.total}" if self.total else ""
        tail = f", {self.postfix}" if self.postfix else ""
        done = "done: " if final else ""
        return f"{self.desc}: {done}{self.n}{of} {self.unit}s in {seconds:.0f} s, {rate:.2f} {self.unit}/s{tail}"

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.t_last >= self.interval:
            self.t_last = now
            print(self._line(False), file=self.file, flush=True)

    def write(self, text: str) -> None:
        """A message between progress lines (tqdm's `write`: to stdout)."""
        print(text, flush=True)

    def set_postfix(self, **values) -> None:
        self.postfix = ", ".join(f"{k} {v}" for k, v in values.items())

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            print(self._line(True), file=self.file, flush=True)


def progress(iterable: Iterable | None = None, *, total: int | None = None, initial: int = 0, desc: str = "",
             unit: str = "it", file=None):
    """tqdm's bar where `file` (default stderr) is a terminal, else a `LineProgress`."""
    stream = file if file is not None else sys.stderr
    if stream.isatty():
        return tqdm(iterable, total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True, file=stream)
    return LineProgress(iterable, total=total, initial=initial, desc=desc, unit=unit, file=stream)
