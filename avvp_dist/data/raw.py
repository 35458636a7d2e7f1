"""A raw dataset folder (annotations + per-video `.npy`) as a stream of samples for sharding."""
from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Iterator

from avvp_dist.data.annotations import Annotations, VideoRecord
from avvp_dist.data.config import DataConfig
from avvp_dist.data.datasets import data_spec
from avvp_dist.data.features import FeatureError, FeatureSpec, read_video_features


def read_annotations(cfg: DataConfig) -> Annotations:
    """The annotation files under `cfg.root`, read by the dataset's own reader."""
    if not cfg.root:
        raise ValueError("data.root is not set: the folder with the annotation files")
    return data_spec(cfg.dataset).read_annotations(Path(cfg.root))


def features_dir(cfg: DataConfig) -> Path:
    return Path(cfg.features_dir) if cfg.features_dir else Path(cfg.root) / cfg.features_folder


def shard_features(specs: list[FeatureSpec]) -> list[dict]:
    """Manifest entries: the shapes as stored in shards (after pooling), and `source`: the
    files they were read from (rows on disk, pooling, file template), which model checkpoints
    carry so that `parse` reads new files as the training data was read."""
    return [{"name": s.name, "modality": s.modality, "dim": s.dim, "steps": s.out_steps,
             "source": {"steps": s.steps, "pool": s.pool, "file": s.file}} for s in specs]


ROW_TOLERANCE = (4, 0.03)  # rows, fraction: a variable-length feature may differ from duration / hop by this


def rows_match_duration(rows: int, duration: float, seconds_per_row: float) -> bool:
    """Whether `rows` feature rows fit a video of `duration` s at `seconds_per_row`, within
    `ROW_TOLERANCE`: max(4 rows, 3% of duration / seconds_per_row) either way (a clip
    extractor's window of 16-24 frames at a stride of 8 drops 1-2 rows at the end, and
    the modalities are trimmed to the shortest)."""
    expected = duration / seconds_per_row
    return abs(rows - expected) <= max(ROW_TOLERANCE[0], ROW_TOLERANCE[1] * expected)


def raw_samples(records: list[VideoRecord], cfg: DataConfig, counts: Counter) -> Iterator[tuple[str, dict, dict]]:
    """(name, features and external segment labels by name, meta) per video; a bad feature file
    raises, or under `on_error=skip`
    is skipped and counted in `counts` (`skipped/<reason>`) with the file named in the log.
    Variable-length features whose rows disagree with the video's duration (`rows_match_duration`)
    are kept, counted (`feature_rows_off_duration`) and the first few named in the log."""
    log = logging.getLogger(__name__)
    folder, specs, labels = features_dir(cfg), cfg.feature_specs(), cfg.label_specs()
    hop = data_spec(cfg.dataset).seconds_per_row
    variable = any(not s.steps for s in specs)
    for rec in records:
        try:
            feats = read_video_features(rec.vid, specs, folder, cfg.id_chars, counts, labels)
        except FeatureError as e:
            if cfg.on_error == "raise":
                raise
            reason = "missing_feature_file" if "not found" in str(e) else "bad_feature_file"
            counts[f"skipped/{reason}"] += 1
            log.warning("skipping video %s: %s", rec.vid, e)
            continue
        rows = next(iter(feats.values())).shape[0]
        if variable and not rows_match_duration(rows, rec.duration, hop):
            counts["feature_rows_off_duration"] += 1
            if counts["feature_rows_off_duration"] <= 5:
                log.warning("video %s: %d feature rows, its duration %.2f s gives %.1f at %.2f s a row",
                            rec.vid, rows, rec.duration, rec.duration / hop, hop)
        yield rec.vid, feats, rec.meta()
