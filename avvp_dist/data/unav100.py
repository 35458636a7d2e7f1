"""Reader for UnAV-100's `unav100_annotations.json` (untrimmed videos, audio-visual events).

`{"version": ..., "database": {vid: {"duration": s, "subset": "train|validation|test",
"annotations": [{"segment": [start_s, end_s], "label": str, "label_id": int}]}}}`.
The class list is `UNAV100_CLASSES` (the published 100 classes, ordered by `label_id`)
unless another is given; every annotation's `label_id` must be its label's index in it.
Events are audio-visual (`modality="av"`).
"""
from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

from avvp_dist.data.annotations import AnnotationError, Annotations, Event, VideoRecord, note
from avvp_dist.data.features import FeatureSpec

UNAV_FEATURE_HOP_S = 0.32  # one feature row per 8 frames at 25 fps
UNAV100_FEATURES = (  # the published release: I3D rgb and flow, VGGish; one row per 0.32 s, lengths vary
    FeatureSpec("vggish", "audio", 128, file="{vid}_{name}.npy"),
    FeatureSpec("rgb", "visual", 1024, file="{vid}_{name}.npy"),
    FeatureSpec("flow", "visual", 1024, file="{vid}_{name}.npy"),
)
UNAV100_LABELS = (  # external segment labels, where a user makes some: (T, 100) per video and modality
    FeatureSpec("audio_labels", "audio", 100, file="{vid}_{name}.npy"),
    FeatureSpec("visual_labels", "visual", 100, file="{vid}_{name}.npy"),
)
SUBSETS = {"train": "train", "validation": "val", "test": "test"}
UNAV100_CLASSES = [  # ordered by label_id, as in unav100_annotations.json
    "man speaking", "woman speaking", "kid speaking", "male singing", "people laughing",
    "car passing by", "baby laughter", "wind noise", "people clapping", "people shouting",
    "people crowd", "female singing", "dog barking", "playing acoustic guitar", "people eating",
    "people cheering", "basketball bounce", "engine knocking", "playing tennis", "baby babbling",
    "striking bowling", "playing badminton", "cat meowing", "people slapping", "playing piano",
    "baby crying", "people burping", "orchestra", "playing drum kit", "playing violin",
    "machine gun shooting", "child singing", "people nose blowing", "playing electronic organ",
    "people sneezing", "dog howling", "skateboarding", "playing base guitar", "auto racing",
    "sea waves", "playing table tennis", "people coughing", "people whispering", "playing ukulele",
    "sheep bleating", "playing tabla", "fire truck siren", "playing volleyball", "beat boxing",
    "playing trumpet", "thunder", "playing cello", "playing harp", "hammering nails",
    "people running", "sailing", "telephone bell ringing", "frog croaking", "driving motorcycle",
    "playing cornet", "playing clarinet", "train wheels squealing", "playing flute",
    "playing trombone", "playing erhu", "bull bellowing", "raining", "skidding",
    "chainsawing trees", "police car siren", "playing saxophone", "fireworks banging",
    "driving buses", "tap dancing", "airplane flyby", "people whistling", "train horning",
    "vacuum cleaner cleaning floors", "playing accordion", "bird chirping", "vehicle honking",
    "church bell ringing", "playing snare drum", "playing synthesizer",
    "typing on computer keyboard", "singing choir", "lions roaring", "people slurping",
    "helicopter", "horse clip-clop", "water burbling", "lawn mowing", "playing banjo",
    "playing zither", "playing harmonica", "people battle cry", "people sobbing", "ambulance siren",
    "rope skipping", "hair dryer drying",
]



def read_unav100_annotations(path: str | Path, classes: list[str] | None = None) -> Annotations:
    """All UnAV-100 splits with their events, labels checked against `classes`."""
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
    classes = list(classes or UNAV100_CLASSES)
    index = {c: i for i, c in enumerate(classes)}
    quirks: Counter = Counter()
    examples: dict[str, list[str]] = {}
    splits: dict[str, list[VideoRecord]] = {s: [] for s in SUBSETS.values()}
    for vid, entry in database.items():
        where = f"{path}: video {vid!r}"
        if not vid or "/" in vid or "\0" in vid:  # names a feature file: {vid}_{feature}.npy
            raise AnnotationError(f"{where}: video ids may not be empty or contain '/'")
        if not isinstance(entry, dict):
            raise AnnotationError(f"{where}: entry is a {type(entry).__name__}, expected an object "
                                  "with duration, subset and annotations")
        subset = entry.get("subset")
        if subset not in SUBSETS:
            raise AnnotationError(f"{where}: subset {subset!r} is not one of {list(SUBSETS)}")
        duration = entry.get("duration")
        if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not math.isfinite(duration) \
                or duration <= 0:
            raise AnnotationError(f"{where}: duration {duration!r} is not a positive finite number")
        anns = entry.get("annotations", [])
        if not isinstance(anns, list):
            raise AnnotationError(f"{where}: 'annotations' is a {type(anns).__name__}, expected a list")
        events = []
        for n, ann in enumerate(anns):
            if not isinstance(ann, dict):
                raise AnnotationError(f"{where}: annotation {n} is a {type(ann).__name__}, expected an object "
                                      "with segment, label and label_id")
            seg, label = ann.get("segment"), ann.get("label")
            if label not in index:
                raise AnnotationError(f"{where}: label {label!r} is not in the class list")
            if ann.get("label_id") != index[label]:
                raise AnnotationError(f"{where}: label {label!r} has label_id {ann.get('label_id')!r}, "
                                      f"expected {index[label]}")
            if not (isinstance(seg, list) and len(seg) == 2
                    and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in seg)):
                raise AnnotationError(f"{where}: annotation {n}: segment {seg!r} is not [start_s, end_s]")
            start, end = float(seg[0]), float(seg[1])
            event = f"{vid} {seg}"
            if end < start:  # dropped, like every event that covers no time of the video
                note(quirks, examples, "reversed_events_dropped", event)
                continue
            if end == start:
                note(quirks, examples, "zero_length_events_dropped", event)
                continue
            if start >= duration or end <= 0:
                note(quirks, examples, "events_outside_video_dropped", f"{event} of {duration} s")
                continue
            if start < 0 or end > duration:
                note(quirks, examples, "events_clipped_to_duration", f"{event} of {duration} s")
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
    return Annotations("unav100", classes, splits, quirks, examples)
