"""Where a dataset's feature rows sit in time: seconds to rows and back, in one type.

Row t of a video's features spans [offset + hop t, offset + hop (t + 1)) seconds, its centre
at offset + hop (t + 1/2). Each dataset's module gives its grid, with its source (its
`DataSpec.grid`): LLP's 1 s segments from 0 s; UnAV-100's 0.32 s rows centred at
0.32 t + 0.48 s, as its official code has them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TimeGrid:
    """Feature rows on the time axis: row t spans [offset_s + hop_s t, offset_s + hop_s (t + 1)) s."""

    hop_s: float
    offset_s: float = 0.0

    def __post_init__(self):
        if self.hop_s <= 0:
            raise ValueError(f"hop_s must be positive, got {self.hop_s}")

    def seconds(self, boundary):
        """Seconds of row boundary `boundary` (a number or an array): row t starts at boundary t."""
        return self.offset_s + self.hop_s * boundary

    def centres(self, rows: int) -> np.ndarray:
        """(rows,) seconds of each row's centre."""
        return self.offset_s + self.hop_s * (np.arange(rows) + 0.5)

    def segment(self, a, b, duration: float | None = None):
        """(start, end) seconds of rows [a, b) (numbers or arrays), clamped to [0, duration] when
        the duration is known."""
        start, end = self.seconds(a), self.seconds(b)
        if duration is not None:
            start, end = np.clip(start, 0.0, duration), np.clip(end, 0.0, duration)
        return start, end

    def rows_within(self, start_s: float, end_s: float, rows: int) -> np.ndarray:
        """(rows,) bool: the rows whose centre lies in [start_s, end_s)."""
        c = self.centres(rows)
        return (c >= start_s) & (c < end_s)

