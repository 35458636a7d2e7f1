"""Dataset-independent annotation records: videos, weak labels, timed events, quirk counts."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal, Optional

import numpy as np

SPLITS = ("train", "val", "test")


class AnnotationError(ValueError):
    """An annotation file is malformed; the message names the file and the row or key."""


@dataclass(frozen=True)
class Event:
    """One annotated event: `label` in `modality` from `onset` to `offset` seconds."""

    label: str
    modality: Literal["audio", "visual", "av"]
    onset: float
    offset: float


@dataclass
class VideoRecord:
    """One video: its weak (video-level) labels and, where annotated, its dense events."""

    vid: str
    labels: tuple[str, ...]
    duration: float
    events: Optional[list[Event]] = None  # None: no dense annotation (training splits)

    def meta(self) -> dict:
        """JSON-able meta stored beside the features in a shard."""
        out = {"vid": self.vid, "labels": list(self.labels), "duration": self.duration}
        if self.events is not None:
            out["events"] = [[e.label, e.modality, e.onset, e.offset] for e in self.events]
        return out


@dataclass
class Annotations:
    """All splits of one dataset, the class list, and the counted quirks of the files."""

    dataset: str
    classes: list[str]
    splits: dict[str, list[VideoRecord]]
    quirks: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)  # quirk -> the first videos it concerns

    def split(self, name: str) -> list[VideoRecord]:
        if name not in self.splits:
            raise AnnotationError(f"{self.dataset}: no split {name!r} (have {sorted(self.splits)})")
        return self.splits[name]

    def report(self) -> list[str]:
        """One line per counted quirk, for logs."""
        return [f"{self.dataset}: {k}: {v}" + (f" (e.g. {', '.join(self.examples[k])})" if self.examples.get(k) else "")
                for k, v in sorted(self.quirks.items()) if v]


def note(quirks: Counter, examples: dict[str, list[str]], quirk: str, where: str, keep: int = 5) -> None:
    """Counts one `quirk` and keeps `where` (a video, an event of it) among its first `keep` examples."""
    quirks[quirk] += 1
    names = examples.setdefault(quirk, [])
    if len(names) < keep:
        names.append(where)


def segment_labels(events: list[Event], classes: list[str], num_segments: int,
                   segment_s: float = 1.0) -> np.ndarray:
    """Dense segment ground truth from events, `GT[m, c, onset:offset] = 1`.

    Returns (2, C, T) uint8 for m in (audio, visual); an `av` event marks both.
    Onsets and offsets are in seconds and converted with `round(x / segment_s)`,
    so LLP's integer seconds give exactly `GT[c, onset:offset] = 1`; zero-length
    events add nothing and overlapping events form a union.
    """
    index = {c: i for i, c in enumerate(classes)}
    gt = np.zeros((2, len(classes), num_segments), np.uint8)
    for e in events:
        lo, hi = int(round(e.onset / segment_s)), int(round(e.offset / segment_s))
        rows = (0, 1) if e.modality == "av" else ((0,) if e.modality == "audio" else (1,))
        for m in rows:
            gt[m, index[e.label], lo:hi] = 1
    return gt


def segment_truth(meta: dict, classes: list[str], rows: int, grid) -> np.ndarray | None:
    """(rows, 2, C) bool segment truth of one video from its shard meta's dense `events` (None
    where the meta has none: a split without dense labels; an empty list is a video whose
    truth is all negative, as the evaluation counts it): the rows of `grid` (a
    `timegrid.TimeGrid`) whose centre lies in an event, in its modality (`av`: both). On LLP's
    1 s grid this is `GT[c, onset:offset] = 1`."""
    if meta.get("events") is None:
        return None
    index = {c: i for i, c in enumerate(classes)}
    truth = np.zeros((rows, 2, len(classes)), bool)
    for label, modality, onset, offset in meta["events"]:
        within = grid.rows_within(float(onset), float(offset), rows)
        for m in ((0, 1) if modality == "av" else (0,) if modality == "audio" else (1,)):
            truth[within, m, index[label]] = True
    return truth

