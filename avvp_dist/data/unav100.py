"""Reader for UnAV-100's `unav100_annotations.json` (untrimmed videos, audio-visual events).

`{"version": ..., "database": {vid: {"duration": s, "subset": "train|validation|test",
"annotations": [{"segment": [start_s, end_s], "label": str, "label_id": int}]}}}`.
The class list is ordered by `label_id`. Events are audio-visual (`modality="av"`).
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from avvp_dist.data.annotations import AnnotationError, Annotations, Event, VideoRecord

UNAV_FEATURE_HOP_S = 0.32  # one feature row per 8 frames at 25 fps
SUBSETS = {"train": "train", "validation": "val", "test": "test"}


def _classes(path: Path, database: dict) -> list[str]:
    """Class names ordered by label_id; a name with two ids (or an id gap) is an error."""
    by_id: dict[int, str] = {}
    by_name: dict[str, int] = {}
    for vid, entry in database.items():
        for ann in entry.get("annotations", []):
            try:
                i, name = int(ann["label_id"]), str(ann["label"])
            except (KeyError, TypeError, ValueError):
                raise AnnotationError(f"{path}: video {vid!r}: annotation {ann!r} needs 'label' and integer 'label_id'") from None
            if by_id.setdefault(i, name) != name or by_name.setdefault(name, i) != i:
                raise AnnotationError(f"{path}: video {vid!r}: label {name!r} with label_id {i} contradicts "
                                      f"earlier ({by_name[name]} -> {by_id[by_name[name]]!r}, {i} -> {by_id[i]!r})")
    names = [by_id[i] for i in sorted(by_id)]
    if sorted(by_id) != list(range(len(by_id))) or len(set(names)) != len(names):
        raise AnnotationError(f"{path}: label ids must be 0..N-1, one name each; got {sorted(by_id)[:5]}...")
    return names


def read_unav100_annotations(path: str | Path, classes: list[str] | None = None) -> Annotations:
    """All UnAV-100 splits with their events; the class list comes from the file unless given."""
    path = Path(path)
    if path.is_dir():
        path = path / "unav100_annotations.json"
    if not path.is_file():
        raise AnnotationError(f"{path}: file not found")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise AnnotationError(f"{path}: not valid JSON ({e})") from e
    database = doc.get("database") if isinstance(doc, dict) else None
    if not isinstance(database, dict):
        raise AnnotationError(f"{path}: missing top-level 'database' mapping")
    classes = classes or _classes(path, database)
    known = set(classes)
    quirks: Counter = Counter()
    splits: dict[str, list[VideoRecord]] = {s: [] for s in SUBSETS.values()}
    for vid, entry in database.items():
        where = f"{path}: video {vid!r}"
        if "." in vid or "/" in vid:
            raise AnnotationError(f"{where}: video ids may not contain '.' or '/'")
        subset = entry.get("subset")
        if subset not in SUBSETS:
            raise AnnotationError(f"{where}: subset {subset!r} is not one of {list(SUBSETS)}")
        duration = entry.get("duration")
        if not isinstance(duration, (int, float)) or duration <= 0:
            raise AnnotationError(f"{where}: duration {duration!r} is not a positive number")
        events = []
        for ann in entry.get("annotations", []):
            seg, label = ann.get("segment"), ann.get("label")
            if label not in known:
                raise AnnotationError(f"{where}: label {label!r} is not in the class list")
            if not (isinstance(seg, list) and len(seg) == 2 and all(isinstance(x, (int, float)) for x in seg)):
                raise AnnotationError(f"{where}: segment {seg!r} is not [start_s, end_s]")
            start, end = float(seg[0]), float(seg[1])
            if end <= start:
                quirks["empty_events"] += 1
                continue
            if start < 0 or end > duration:
                quirks["events_clipped_to_duration"] += 1
                start, end = max(0.0, start), min(float(duration), end)
            events.append(Event(label, "av", start, end))
        quirks["events"] += len(events)
        labels = tuple(sorted({e.label for e in events}, key=classes.index))
        if not labels:
            quirks["videos_without_events"] += 1
        splits[SUBSETS[subset]].append(VideoRecord(vid, labels, float(duration), events))
    for split, records in splits.items():
        if not records:
            raise AnnotationError(f"{path}: empty split {split!r}")
    return Annotations("unav100", classes, splits, quirks)
