"""UnAV-100 in one place: its reader, feature release, synthetic format, preset parts and evaluation hooks.

Annotations: `unav100_annotations.json` = `{"version": ..., "database": {vid: {"duration": s,
"subset": "train|validation|test", "annotations": [{"segment": [start_s, end_s], "label": str,
"label_id": int}]}}}`. The class list is `UNAV100_CLASSES` (the published 100 classes, ordered
by `label_id`) unless another is given; every annotation's `label_id` must be its label's index
in it. Events are audio-visual (`modality="av"`). Features: `<vid>_rgb.npy`, `<vid>_flow.npy`
(I3D) and `<vid>_vggish.npy`, one row per 0.32 s. Importing this module registers the dataset.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from functools import partial
from pathlib import Path


from avvp_dist.data.annotations import SPLITS, AnnotationError, Annotations, Event, VideoRecord, note
from avvp_dist.data.datasets import DataSpec
from avvp_dist.data.features import FeatureSet, FeatureSpec
from avvp_dist.data.timegrid import TimeGrid
from avvp_dist.data.synth import SynthConfig, SynthFormat, generated_events, generated_labels, spans, video_id
from avvp_dist.eval.datasets import DatasetSpec, register_dataset
from avvp_dist.eval.events import unav_events
from avvp_dist.eval.report import unav_report, unav_timeline
from avvp_dist.eval.tables import format_unav_table

UNAV_FEATURE_HOP_S = 0.32  # one feature row per 8 frames at 25 fps
# Where the rows sit in time, as UnAV's official code has it (github.com/ttgeng233/UnAV):
# features of 24-frame windows every 8 frames at 25 fps (`libs/core/config.py`: feat_stride 8,
# num_frames 24, default_fps 25); grid point t is at (8 t + 12) / 25 s (`libs/modeling/
# multimodal_meta_archs.py`, `postprocessing`: seconds = (grid x stride + 0.5 x num_frames) / fps,
# then clamped to [0, duration]) and an annotation maps back with grid = (seconds x fps - 0.5 x
# num_frames) / stride (`libs/datasets/unav100.py`). Row t's centre is 0.32 t + 0.48 s: the row
# spans [0.32 t + 0.32, 0.32 t + 0.64) s. (Before 2026-12-06 this project put it at
# [0.32 t, 0.32 t + 0.32): 0.32 s early; docs/evaluation.md.)
UNAV100_GRID = TimeGrid(UNAV_FEATURE_HOP_S, offset_s=0.32)
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


def _load(path: Path) -> tuple[Path, dict]:
    """The annotation file (a folder means its `unav100_annotations.json`) and its database."""
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
    return path, database


def _check_entry(where: str, vid: str, entry) -> tuple[str, int | float, list]:
    """(subset, duration as written, annotations) of one database entry, each checked."""
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
    return subset, duration, anns


def _segment(where: str, n: int, ann, index: dict[str, int]) -> tuple[str, float, float, list]:
    """(label, start, end, segment as written) of annotation `n`, its label and id checked."""
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
    return label, float(seg[0]), float(seg[1]), seg


def _events(where: str, vid: str, duration: int | float, anns: list, index: dict[str, int], quirks: Counter,
            examples: dict) -> list[Event]:
    """The video's events; those that cover no time of it are dropped and counted, those that
    reach outside it are clipped and counted."""
    events = []
    for n, ann in enumerate(anns):
        label, start, end, seg = _segment(where, n, ann, index)
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
    return events


def read_unav100_annotations(path: str | Path, classes: list[str] | None = None) -> Annotations:
    """All UnAV-100 splits with their events, labels checked against `classes`."""
    path, database = _load(Path(path))
    classes = list(classes or UNAV100_CLASSES)
    index = {c: i for i, c in enumerate(classes)}
    quirks: Counter = Counter()
    examples: dict[str, list[str]] = {}
    splits: dict[str, list[VideoRecord]] = {s: [] for s in SUBSETS.values()}
    for vid, entry in database.items():
        where = f"{path}: video {vid!r}"
        subset, duration, anns = _check_entry(where, vid, entry)
        events = _events(where, vid, duration, anns, index, quirks, examples)
        quirks["events"] += len(events)
        labels = tuple(sorted({e.label for e in events}, key=classes.index))
        if not labels:
            quirks["videos_without_events"] += 1
        splits[SUBSETS[subset]].append(VideoRecord(vid, labels, float(duration), events))
    for split, records in splits.items():
        if not records:
            raise AnnotationError(f"{path}: empty split {split!r}")
    return Annotations("unav100", classes, splits, quirks, examples)


# ---- the synthetic generator's UnAV-100 format ----------------------------------------------
def _synth_records(cfg: SynthConfig, classes: list[str], rng) -> dict[str, list[VideoRecord]]:
    sizes = {"train": cfg.num_train, "val": cfg.num_val, "test": cfg.num_test}
    taken: set[str] = set()
    out = {}
    if cfg.annotations:
        real = read_unav100_annotations(cfg.annotations)
    for split, n in sizes.items():
        records = []
        for _ in range(n):
            if cfg.annotations:
                pool = real.split(split)
                src = pool[rng.integers(len(pool))]
                duration, events = src.duration, list(src.events)
            else:
                duration = round(float(rng.uniform(10, 60)), 2)
                events = generated_events(rng, generated_labels(rng, classes), duration, False, True)
            labels = tuple(sorted({e.label for e in events}, key=classes.index))
            records.append(VideoRecord(video_id(rng, taken), labels, duration, events))
        out[split] = records
    return out


def _synth_rows(cfg: SynthConfig, rec: VideoRecord, specs: list[FeatureSpec], classes: list[str], rng):
    """Feature rows per name (lengths that differ by a row or two), the time grid (the official
    one: rows centred at 0.32 t + 0.48 s), and single-modality distractors (unannotated: only
    audio-visual events count)."""
    n = max(4, int(rec.duration / UNAV_FEATURE_HOP_S))
    rows = {s.name: n - int(rng.integers(0, 3)) for s in specs}
    extra = [Event(classes[rng.integers(len(classes))], str(rng.choice(["audio", "visual"])), a, b)
             for _ in range(rng.poisson(cfg.distractors)) for a, b in spans(rng, rec.duration, False)[:1]]
    return rows, UNAV100_GRID, extra


def _synth_write(out: Path, records: dict[str, list[VideoRecord]], classes: list[str]) -> None:
    subset = {"train": "train", "val": "validation", "test": "test"}
    db = {
        r.vid: {
            "duration": r.duration,
            "subset": subset[split],
            "annotations": [{"segment": [e.onset, e.offset], "label": e.label, "label_id": classes.index(e.label)}
                            for e in r.events],
        }
        for split in SPLITS for r in records[split]
    }
    (out / "unav100_annotations.json").write_text(json.dumps({"version": "unav100-synthetic", "database": db}))


# what the presets set on UnAV-100 beyond their common part (config.presets). ours: UnAV-100's
# labels are audio-visual events (nothing to refine), and pseudo masks lowered mAP in the tuning
# runs while CMA with pairs from adaptive masks raised it (docs/accuracy.md)
PRESET_PARTS = {"ours": {"method": {"pseudo": {"enabled": False}, "refine": {"enabled": False}}}}

UNAV100 = register_dataset(DatasetSpec(
    DataSpec("unav100", tuple(UNAV100_CLASSES), read_unav100_annotations,
             (FeatureSet("unav100", UNAV100_FEATURES, UNAV100_LABELS),), UNAV100_GRID,
             synth=SynthFormat(_synth_records, _synth_rows, _synth_write), presets=PRESET_PARTS),
    "map_mean", partial(unav_report, grid=UNAV100_GRID), format_unav_table, partial(unav_timeline, grid=UNAV100_GRID),
    unav_events))
