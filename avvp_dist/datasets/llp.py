"""LLP in one place: its reader, feature releases, synthetic format and evaluation hooks.

Annotation files (tab-separated, with a header), all in one folder:
`AVVP_train.csv`, `AVVP_val_pd.csv`, `AVVP_test_pd.csv`: `filename<TAB>event_labels`;
`AVVP_eval_audio.csv`, `AVVP_eval_visual.csv`: `filename onset offset event_labels`.

Policy for the quirks of the real files (counted in `Annotations.quirks`, never an error):
dense rows of ids in no split are ignored; zero-length rows and the one reversed row
(`onset > offset`) add nothing, as `GT[c, onset:offset] = 1` does; overlapping
rows of one class are a union; dense labels missing from the weak labels are kept as GT.
Importing this module registers the dataset.
"""
from __future__ import annotations

import csv
from collections import Counter, defaultdict
from pathlib import Path

from avvp_dist.data.annotations import AnnotationError, Annotations, Event, VideoRecord
from avvp_dist.data.datasets import DataSpec
from avvp_dist.data.features import FeatureSet, FeatureSpec
from avvp_dist.data.timegrid import TimeGrid
from avvp_dist.data.synth import SynthConfig, SynthFormat, generated_events, generated_labels, video_id
from avvp_dist.eval.datasets import DatasetSpec, register_dataset
from avvp_dist.eval.events import llp_events
from avvp_dist.eval.report import llp_calibration, llp_report, llp_timeline
from avvp_dist.eval.tables import llp_tables

LLP_CLASSES = [
    "Speech", "Car", "Cheering", "Dog", "Cat", "Frying_(food)", "Basketball_bounce",
    "Fire_alarm", "Chainsaw", "Cello", "Banjo", "Singing", "Chicken_rooster",
    "Violin_fiddle", "Vacuum_cleaner", "Baby_laughter", "Accordion", "Lawn_mower",
    "Motorcycle", "Helicopter", "Acoustic_guitar", "Telephone_bell_ringing",
    "Baby_cry_infant_cry", "Blender", "Clapping",
]
LLP_SEGMENTS = 10  # one-second segments per 10 s clip
LLP_FEATURES = (  # the published feature release (HAN's): one .npy per video, named by the first 11 characters
    FeatureSpec("vggish", "audio", 128, steps=10),
    FeatureSpec("res152", "visual", 2048, steps=80, pool=8),
    FeatureSpec("r2plus1d_18", "visual", 512, steps=10),
)
# VALOR's release (github.com/Franklin905/VALOR, README "File structure"), its data/ folder as
# the raw folder: CLAP audio and CLIP ViT-L/14 visual segment features, HAN's R(2+1)D-18, and the
# segment-level pseudo-labels harvested from CLAP and CLIP, (10, 25) per video and modality
VALOR_FEATURES = (
    FeatureSpec("clap", "audio", 512, steps=10, file="CLAP/features/{id}.npy"),
    FeatureSpec("clip", "visual", 768, steps=10, file="CLIP/features/{id}.npy"),
    FeatureSpec("r2plus1d_18", "visual", 512, steps=10, file="feats/r2plus1d_18/{id}.npy"),
)
VALOR_HAN_FEATURES = (  # HAN's release as VALOR lays it out (its VALOR and VALOR+ runs): data/feats/<name>/
    FeatureSpec("vggish", "audio", 128, steps=10, file="feats/{name}/{id}.npy"),
    FeatureSpec("res152", "visual", 2048, steps=80, pool=8, file="feats/{name}/{id}.npy"),
    FeatureSpec("r2plus1d_18", "visual", 512, steps=10, file="feats/{name}/{id}.npy"),
)
VALOR_LABELS = (
    FeatureSpec("clap_labels", "audio", 25, steps=10, file="CLAP/segment_pseudo_labels/{id}.npy"),
    FeatureSpec("clip_labels", "visual", 25, steps=10, file="CLIP/segment_pseudo_labels/{id}.npy"),
)
# no external labels come with HAN's release; where a user makes some, this is where they go
LLP_LABELS = (
    FeatureSpec("audio_labels", "audio", 25, steps=10, file="segment_labels/audio/{id}.npy"),
    FeatureSpec("visual_labels", "visual", 25, steps=10, file="segment_labels/visual/{id}.npy"),
)
WEAK_FILES = {"train": "AVVP_train.csv", "val": "AVVP_val_pd.csv", "test": "AVVP_test_pd.csv"}
DENSE_FILES = {"audio": "AVVP_eval_audio.csv", "visual": "AVVP_eval_visual.csv"}
WEAK_HEADER = ["filename", "event_labels"]
DENSE_HEADER = ["filename", "onset", "offset", "event_labels"]

LLP_GRID = TimeGrid(1.0)  # HAN's release: one row per 1 s segment, from 0 s


def _read_tsv(path: Path, header: list[str]) -> list[tuple[int, list[str]]]:
    """Rows of a tab-separated file as (line number, fields), header checked."""
    if not path.is_file():
        raise AnnotationError(f"{path}: file not found")
    with open(path, newline="") as f:
        lines = list(csv.reader(f, delimiter="\t"))
    if not lines:
        raise AnnotationError(f"{path}: empty file (expected header {header})")
    if lines[0] != header:
        got = "\t".join(lines[0])
        hint = " (is it comma-separated? LLP files are tab-separated)" if "\t" not in got and "," in got else ""
        raise AnnotationError(f"{path}: expected tab-separated header {header}, got {lines[0]}{hint}")
    rows = []
    for n, fields in enumerate(lines[1:], start=2):
        if not fields:
            continue
        if len(fields) != len(header):
            raise AnnotationError(f"{path}:{n}: expected {len(header)} tab-separated columns, got {len(fields)}: {fields}")
        rows.append((n, fields))
    return rows


def _check_label(path: Path, line: int, label: str, classes: set[str]) -> str:
    if label not in classes:
        raise AnnotationError(f"{path}:{line}: label {label!r} is not an LLP class")
    return label


def read_weak_csv(path: Path, classes: list[str] = LLP_CLASSES) -> dict[str, tuple[str, ...]]:
    """`{video id: weak labels}` from one split CSV; duplicates, unknown labels, empty: errors."""
    known = set(classes)
    out: dict[str, tuple[str, ...]] = {}
    for line, (vid, labels) in _read_tsv(path, WEAK_HEADER):
        if vid in out:
            raise AnnotationError(f"{path}:{line}: duplicate video id {vid!r}")
        names = [s for s in labels.split(",") if s]
        if not names:
            raise AnnotationError(f"{path}:{line}: video {vid!r} has no labels")
        out[vid] = tuple(_check_label(path, line, s, known) for s in names)
    if not out:
        raise AnnotationError(f"{path}: empty split (no videos)")
    return out


def read_dense_csv(path: Path, classes: list[str] = LLP_CLASSES) -> list[tuple[int, str, int, int, str]]:
    """Rows (line, video id, onset, offset, label) of a dense CSV, integer seconds checked."""
    known = set(classes)
    rows = []
    for line, (vid, on, off, label) in _read_tsv(path, DENSE_HEADER):
        try:
            onset, offset = int(on), int(off)
        except ValueError:
            raise AnnotationError(f"{path}:{line}: onset/offset {on!r}/{off!r} are not integer seconds") from None
        if not (0 <= onset <= LLP_SEGMENTS and 0 <= offset <= LLP_SEGMENTS):
            raise AnnotationError(f"{path}:{line}: onset and offset must lie in 0..{LLP_SEGMENTS}, got {onset}, {offset}")
        rows.append((line, vid, onset, offset, _check_label(path, line, label, known)))
    return rows


def _count_overlaps(spans: list[tuple[int, int]]) -> tuple[int, int]:
    """(overlapping pairs, rows in some overlap) among one class's rows in one video."""
    pairs, rows = 0, set()
    for i in range(len(spans)):
        for j in range(i + 1, len(spans)):
            if max(spans[i][0], spans[j][0]) < min(spans[i][1], spans[j][1]):
                pairs += 1
                rows.update((i, j))
    return pairs, len(rows)


def read_llp_annotations(folder: str | Path) -> Annotations:
    """All LLP splits with dense events for val/test, quirks counted per DESIGN policy."""
    folder = Path(folder)
    weak = {split: read_weak_csv(folder / name) for split, name in WEAK_FILES.items()}
    seen: dict[str, str] = {}
    for split, videos in weak.items():
        for vid in videos:
            if vid in seen:
                raise AnnotationError(f"{folder}: video {vid!r} is in both {seen[vid]} and {split}")
            seen[vid] = split
    dense_ids = {vid for split in ("val", "test") for vid in weak[split]}
    quirks: Counter = Counter()
    events: dict[str, list[Event]] = defaultdict(list)
    for modality, name in DENSE_FILES.items():
        path = folder / name
        spans: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
        for line, vid, onset, offset, label in read_dense_csv(path):
            quirks[f"zero_length_rows/{modality}"] += onset == offset
            quirks[f"reversed_rows/{modality}"] += onset > offset  # GT[c, 9:0] is empty
            if vid not in dense_ids:
                quirks[f"dense_rows_outside_splits/{modality}"] += 1
                continue
            quirks[f"dense_rows/{modality}"] += 1
            quirks[f"dense_labels_outside_weak/{modality}"] += label not in weak[seen[vid]][vid]
            spans[(vid, label)].append((onset, offset))
            events[vid].append(Event(label, modality, float(onset), float(offset)))
        for group in spans.values():
            pairs, rows = _count_overlaps(group)
            quirks[f"overlapping_row_pairs/{modality}"] += pairs
            quirks[f"overlapping_rows/{modality}"] += rows
    for vid in dense_ids:
        annotated = {e.label for e in events.get(vid, ())}
        quirks["weak_labels_without_dense"] += sum(c not in annotated for c in weak[seen[vid]][vid])
    splits = {
        split: [
            VideoRecord(vid, labels, float(LLP_SEGMENTS), events.get(vid, []) if split != "train" else None)
            for vid, labels in videos.items()
        ]
        for split, videos in weak.items()
    }
    return Annotations("llp", list(LLP_CLASSES), splits, quirks)


# ---- the synthetic generator's LLP format -----------------------------------------------------
def _real_patterns(real: Annotations, classes: list[str]) -> dict[str, list[list[Event]]]:
    """For each class, the audio/visual event patterns of the real val/test videos that have it."""
    patterns: dict[str, list[list[Event]]] = {c: [] for c in classes}
    for rec in real.split("val") + real.split("test"):
        for c in set(e.label for e in rec.events):
            patterns[c].append([e for e in rec.events if e.label == c])
    return patterns


def _synth_records(cfg: SynthConfig, classes: list[str], rng) -> dict[str, list[VideoRecord]]:
    sizes = {"train": cfg.num_train, "val": cfg.num_val, "test": cfg.num_test}
    taken: set[str] = set()

    def new_id() -> str:
        start = int(rng.integers(0, 30)) * 10
        return f"{video_id(rng, taken)}_{start}_{start + 10}"

    if not cfg.annotations:
        return {
            split: [
                VideoRecord(new_id(), tuple(labels), float(LLP_SEGMENTS),
                            generated_events(rng, labels, float(LLP_SEGMENTS), True, False))
                for labels in (generated_labels(rng, classes) for _ in range(n))
            ]
            for split, n in sizes.items()
        }
    real = read_llp_annotations(cfg.annotations)
    patterns = _real_patterns(real, classes)
    out = {}
    for split, n in sizes.items():
        pool = real.split(split)
        picks = rng.choice(len(pool), size=n, replace=n > len(pool))
        records = []
        for i in picks:
            src = pool[i]
            if src.events is not None:
                events = list(src.events)
            else:  # train: borrow a real audio/visual pattern of each labelled class
                events = []
                for c in src.labels:
                    cand = patterns[c]
                    events += cand[rng.integers(len(cand))] if cand else generated_events(rng, [c], 10.0, True, False)
            records.append(VideoRecord(new_id(), src.labels, float(LLP_SEGMENTS), events))
        out[split] = records
    return out


def _synth_rows(cfg: SynthConfig, rec: VideoRecord, specs: list[FeatureSpec], classes: list[str], rng):
    """Feature rows per name, the time grid, and unannotated extra events of one LLP video."""
    return {s.name: s.steps for s in specs}, LLP_GRID, []


def _synth_write(out: Path, records: dict[str, list[VideoRecord]], classes: list[str]) -> None:
    for split, name in WEAK_FILES.items():
        with open(out / name, "w", newline="") as f:
            w = csv.writer(f, delimiter="\t", lineterminator="\n")
            w.writerow(WEAK_HEADER)
            w.writerows([r.vid, ",".join(r.labels)] for r in records[split])
    for modality, name in DENSE_FILES.items():
        with open(out / name, "w", newline="") as f:
            w = csv.writer(f, delimiter="\t", lineterminator="\n")
            w.writerow(DENSE_HEADER)
            for split in ("val", "test"):
                for r in records[split]:
                    w.writerows([r.vid, int(e.onset), int(e.offset), e.label] for e in r.events if e.modality == modality)


# what the presets set on LLP beyond their common part (config.presets): the seed paper trains on
# CLAP (audio) and CLIP (visual) segment features, VALOR's release
# on LLP: the paper trains on VALOR's features; VALOR warms up for 10 of its 60 epochs (1,560
# steps at its global batch of 64 on LLP's 10,000 training videos, scripts/train_valor.sh)
PRESET_PARTS = {"paper": {"data": {"feature_set": "valor"}}, "valor": {"train": {"warmup_steps": 1560}}}

LLP = register_dataset(DatasetSpec(
    DataSpec("llp", tuple(LLP_CLASSES), read_llp_annotations,
             (FeatureSet("han", LLP_FEATURES, LLP_LABELS),  # HAN's release: VGGish, ResNet-152, R(2+1)D
              FeatureSet("valor", VALOR_FEATURES, VALOR_LABELS, folder=""),  # CLAP, CLIP, R(2+1)D
              FeatureSet("valor_han", VALOR_HAN_FEATURES, VALOR_LABELS, folder="")), LLP_GRID,
             synth=SynthFormat(_synth_records, _synth_rows, _synth_write), presets=PRESET_PARTS),
    "seg_type", llp_report, llp_tables, llp_timeline, llp_events, llp_calibration))
