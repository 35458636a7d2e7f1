"""Synthetic AVVP datasets in the real on-disk formats, with planted segment-level truth.

What is planted (version `SYNTH_VERSION`; see docs/synthetic-data.md for the why):
- every class has a prototype direction per feature space; classes come in
  confusable pairs whose prototypes share a component (`confusion`);
- an event adds its class prototype, with a random amplitude, to the segments it
  covers, in the modality it belongs to: audio-only, visual-only or both, with
  events of different lengths and several per video;
- video-level context: every labelled class adds a weak copy of its prototype to
  *all* segments (`context`), which makes an MIL classifier fire everywhere;
- cross-modal leakage: an event of one modality adds a weak copy to the other
  modality's features (`leakage`); a per-video scene vector, shared nuisance
  directions, and Gaussian noise (frame-level for the 8 fps res152 rows);
- UnAV-100 videos also get unannotated single-modality distractor events, since
  only audio-visual events count there.
Label sets and dense timings come from the real annotation files when
`annotations` is given (LLP val/test: the real dense events; LLP train: for each
weak label, the audio/visual pattern of a real val/test video of that class;
UnAV-100: real durations and segments); otherwise they are generated.
"""
from __future__ import annotations

import json
import math
import string
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from avvp_dist.data.annotations import SPLITS, Event, VideoRecord
from avvp_dist.data.datasets import data_spec
from avvp_dist.data.features import FeatureSpec
from avvp_dist.data.progress import progress as progress_bar
from avvp_dist.data.timegrid import TimeGrid

# 2: stronger events and more video-level context; 3: the knobs feature_set, external_labels and
# label_noise (at their defaults the files are those of v2, byte for byte:
# tests/test_external_labels.py); 4: events planted on the dataset's time grid (UnAV-100: row t
# centred at 0.32 t + 0.48 s, as UnAV's official code; LLP's files unchanged). Which studies ran
# on which version: docs/synthetic-data.md
SYNTH_VERSION = "4"


@dataclass
class SynthConfig:
    """Synthetic dataset: sizes, source of label statistics, and difficulty knobs."""

    dataset: str = "llp"  # a registered dataset with a synthetic format (`DataSpec.synth`): llp | unav100
    out: str = ""  # default: <run_dir>/raw
    annotations: str = ""  # real annotation folder/file to copy label statistics from; "" = generated
    num_train: int = 600  # demo size: trains in minutes on 2 CPU cores
    num_val: int = 100
    num_test: int = 200
    feature_set: str = ""  # a feature release of the dataset (`data.feature_set`), e.g. llp's valor (CLAP, CLIP)
    feature_dims: dict[str, int] = field(default_factory=dict)  # e.g. {res152: 64} for small tests
    # external segment-level labels per video and modality, (rows, C) 0/1 in the feature set's label
    # layout (VALOR's CLAP / CLIP pseudo-labels for llp's valor set): the planted truth of each
    # labelled class, each segment's bit flipped with probability label_noise (classes the video
    # is not labelled with stay 0, as in VALOR's)
    external_labels: bool = False
    label_noise: float = 0.2
    # set so that the weak baseline scores about what HAN reaches on real LLP (docs/synthetic-data.md)
    strength: float = 4.0  # event amplitude along its prototype, in noise std units
    context: float = 1.0  # video-level class context on every segment: makes MIL fire everywhere
    leakage: float = 0.35  # an event's copy in the other modality
    confusion: float = 0.6  # shared component of a confusable class pair
    noise: float = 1.0  # per-dimension Gaussian noise std
    frame_noise: float = 2.0  # extra per-frame noise of 8 fps features (averaged out by pooling)
    distractors: float = 0.5  # UnAV-100: expected single-modality unannotated events per video
    # the value ranges of the real releases instead of unit-scale features: audio (VGGish) as
    # 8-bit quantised values 0-255, visual (ResNet, I3D, R(2+1)D) as non-negative post-ReLU
    # averages. Off: the files are byte for byte those of generator v2 without the knob.
    raw_scale: bool = False

    def __post_init__(self):
        if data_spec(self.dataset).synth is None:
            raise ValueError(f"the generator has no format for dataset {self.dataset!r} (its DataSpec.synth is None)")
        for name in ("num_train", "num_val", "num_test"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if not 0 <= self.label_noise <= 1:
            raise ValueError(f"label_noise must lie in [0, 1], got {self.label_noise}")
        data_spec(self.dataset).feature_set(self.feature_set)  # an unknown set lists the known ones

    def feature_specs(self) -> list[FeatureSpec]:
        """The dataset's published feature layout, with `feature_dims` overrides applied."""
        specs = data_spec(self.dataset).default_features(self.feature_set)
        unknown = set(self.feature_dims) - {s.name for s in specs}
        if unknown:
            raise ValueError(f"feature_dims: unknown features {sorted(unknown)}")
        for s in specs:
            s.dim = self.feature_dims.get(s.name, s.dim)
        return specs

    def label_specs(self) -> list[FeatureSpec]:
        """The feature set's external label layout, when `external_labels`."""
        return list(data_spec(self.dataset).feature_set(self.feature_set).labels) if self.external_labels else []


def video_id(rng: np.random.Generator, taken: set[str]) -> str:
    """An 11-character YouTube-like id, unique in its first 11 characters."""
    alphabet = np.array(list(string.ascii_letters + string.digits + "_-"))
    while True:
        yid = "".join(rng.choice(alphabet, 11))
        if yid not in taken:
            taken.add(yid)
            return yid


def spans(rng: np.random.Generator, duration: float, integer: bool) -> list[tuple[float, float]]:
    """1-2 event spans inside [0, duration]: some cover the whole clip, many are short."""
    if rng.random() < 0.35:
        return [(0.0, duration)]
    out = []
    for _ in range(1 + (rng.random() < 0.35)):
        length = min(duration, max(1.0, rng.lognormal(math.log(duration * 0.3), 0.6)))
        onset = rng.uniform(0, duration - length)
        if integer:
            length, onset = max(1, round(length)), int(onset)
            onset = min(onset, int(duration) - length)
        out.append((float(onset), float(onset + length)))
    merged = []  # overlapping spans of one class are one event
    for a, b in sorted(out):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def generated_events(rng: np.random.Generator, labels: list[str], duration: float,
                      integer: bool, av_only: bool) -> list[Event]:
    """Events for `labels`: modality both / audio-only / visual-only = 0.5 / 0.3 / 0.2."""
    events = []
    for c in labels:
        if av_only:
            events += [Event(c, "av", a, b) for a, b in spans(rng, duration, integer)]
            continue
        r = rng.random()
        audio = spans(rng, duration, integer) if r < 0.8 else []
        visual = [] if 0.5 <= r < 0.8 else (audio if audio and rng.random() < 0.5 else spans(rng, duration, integer))
        events += [Event(c, "audio", a, b) for a, b in audio] + [Event(c, "visual", a, b) for a, b in visual]
    return events


def generated_labels(rng: np.random.Generator, classes: list[str]) -> list[str]:
    """1-4 classes, long-tailed frequencies, the first class co-occurring often (like Speech)."""
    n = len(classes)
    p = 1.0 / (np.arange(n) + 2.0) ** 0.8
    k = int(rng.choice([1, 2, 3, 4], p=[0.45, 0.35, 0.15, 0.05]))
    picked = list(rng.choice(n, size=k, replace=False, p=p / p.sum()))
    if k > 1 and 0 not in picked and rng.random() < 0.5:
        picked[0] = 0
    return [classes[i] for i in sorted(picked)]


class _Planter:
    """Class prototypes per feature and the feature synthesis of one video."""

    def __init__(self, cfg: SynthConfig, specs: list[FeatureSpec], classes: list[str], rng):
        self.cfg, self.specs, self.classes = cfg, specs, classes
        self.index = {c: i for i, c in enumerate(classes)}
        n = len(classes)
        partner = np.arange(n) ^ 1  # confusable pairs (0,1), (2,3), ...
        partner[partner >= n] = n - 1
        self.proto, self.nuisance = {}, {}
        for s in specs:
            g = rng.standard_normal((n, s.dim))
            p = g + cfg.confusion * g[partner]
            self.proto[s.name] = p / np.linalg.norm(p, axis=1, keepdims=True)
            self.nuisance[s.name] = rng.standard_normal((8, s.dim)) / math.sqrt(s.dim) * 2.0

    @staticmethod
    def _covered(events: list[Event], rows: int, grid: TimeGrid, modality: str):
        """(event, (rows,) bool: the rows whose centre it covers, on the dataset's time grid) for
        each event of `modality`."""
        return [(e, grid.rows_within(e.onset, e.offset, rows)) for e in events if e.modality in (modality, "av")]

    def activity(self, events: list[Event], rows: int, grid: TimeGrid, modality: str, rng) -> np.ndarray:
        """(rows, C) amplitude of each class's events covering each row's centre."""
        act = np.zeros((rows, len(self.classes)))
        for e, on in self._covered(events, rows, grid, modality):
            act[on, self.index[e.label]] = np.maximum(act[on, self.index[e.label]], rng.uniform(0.6, 1.4))
        return act

    def coverage(self, events: list[Event], rows: int, grid: TimeGrid, modality: str) -> np.ndarray:
        """(rows, C) 0/1: the truth of `activity`, drawing nothing from a generator."""
        on = np.zeros((rows, len(self.classes)), np.int64)
        for e, rows_on in self._covered(events, rows, grid, modality):
            on[rows_on, self.index[e.label]] = 1
        return on

    def labels(self, rec: VideoRecord, specs: list[FeatureSpec], rows: int, grid: TimeGrid, rng) -> dict:
        """External segment labels {name: (rows, C) int64}: the annotated events' truth (not the
        unannotated distractors) of the labelled classes, bits flipped with `label_noise`."""
        y = np.zeros(len(self.classes), bool)
        y[[self.index[c] for c in rec.labels]] = True
        out = {}
        for s in specs:
            truth = self.coverage(rec.events or [], rows, grid, s.modality)
            flip = (rng.random(truth.shape) < self.cfg.label_noise) & y
            out[s.name] = np.where(flip, 1 - truth, truth) * y
        return out

    def features(self, rec: VideoRecord, extra: list[Event], rows: dict[str, int], grid: TimeGrid, rng) -> dict:
        cfg = self.cfg
        events = (rec.events or []) + extra
        y = np.zeros(len(self.classes))
        y[[self.index[c] for c in rec.labels]] = 1.0
        out = {}
        for s in self.specs:
            t = rows[s.name]
            steps_per_row = s.pool
            n = t // steps_per_row
            own = self.activity(events, n, grid, s.modality, rng)
            other = self.activity(events, n, grid, "visual" if s.modality == "audio" else "audio", rng)
            signal = (cfg.strength * own + cfg.leakage * other + cfg.context * y) @ self.proto[s.name]
            scene = rng.standard_normal(s.dim) * 0.5 + rng.standard_normal(8) @ self.nuisance[s.name]
            x = signal + scene + cfg.noise * rng.standard_normal((n, s.dim))
            if steps_per_row > 1:  # 8 fps frames around each segment's vector
                x = np.repeat(x, steps_per_row, 0) + cfg.frame_noise * rng.standard_normal((t, s.dim))
            if cfg.raw_scale:
                x = np.clip(np.round(128 + 24 * x), 0, 255) if s.modality == "audio" else np.maximum(0, 0.4 + 0.3 * x)
            out[s.name] = x.astype(np.float32)
        return out


def synthesize(cfg: SynthConfig, out: str | Path, seed: int = 0, progress: bool = False) -> Path:
    """Writes a synthetic dataset in the real format under `out`; deterministic for `seed`."""
    out = Path(out)
    rng = np.random.default_rng([seed, 0x5EED])
    specs, label_specs = cfg.feature_specs(), cfg.label_specs()
    folder = out / data_spec(cfg.dataset).feature_set(cfg.feature_set).folder
    folder.mkdir(parents=True, exist_ok=True)
    fmt, classes = data_spec(cfg.dataset).synth, list(data_spec(cfg.dataset).classes)
    records = fmt.records(cfg, classes, rng)
    planter = _Planter(cfg, specs, classes, rng)
    todo = [r for split in SPLITS for r in records[split]]
    if progress:
        todo = progress_bar(todo, desc=f"synth {cfg.dataset}", unit="video")
    for i, rec in enumerate(todo):
        rows, grid, extra = fmt.rows(cfg, rec, specs, classes, rng)
        arrays = planter.features(rec, extra, rows, grid, rng)
        if label_specs:  # from their own generator: the features are those written without labels
            segments = max(rows[s.name] // s.pool for s in specs)
            arrays.update(planter.labels(rec, label_specs, segments, grid, np.random.default_rng([seed, 0x1ABE1, i])))
        for name, arr in arrays.items():
            spec = next(s for s in [*specs, *label_specs] if s.name == name)
            path = folder / spec.file.format(name=name, vid=rec.vid, id=rec.vid[:11])
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, arr)
    fmt.write(out, records, classes)
    info = {"generator_version": SYNTH_VERSION, "seed": seed, "config": asdict(cfg),
            "features": [asdict(s) for s in specs], "labels": [asdict(s) for s in label_specs],
            "counts": {k: len(v) for k, v in records.items()}}
    (out / "synth_info.json").write_text(json.dumps(info, indent=1))
    return out


@dataclass(frozen=True)
class SynthFormat:
    """How the generator writes one dataset's real on-disk format.

    records(cfg, classes, rng): the videos of each split with their planted events;
    rows(cfg, record, specs, classes, rng): (feature rows per name, the time grid (`TimeGrid`), extra
    unannotated events); write(out, records, classes): the annotation files.
    """

    records: Callable
    rows: Callable
    write: Callable

