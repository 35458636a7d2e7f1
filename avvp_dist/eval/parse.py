"""Inference API: one video's feature files in, its events out (class, modality, seconds, score)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from avvp_dist.data.features import FeatureError, FeatureSpec, common_length, read_feature, video_from_path
from avvp_dist.eval.datasets import dataset_spec
from avvp_dist.eval.detection import DetectionConfig
from avvp_dist.eval.protocol import protocol
from avvp_dist.model.checkpoint import load_model


class VideoParser:
    """>>> VideoParser("best_teacher.pt").parse_video({"vggish": "a.npy", "res152": "b.npy", ...})"""

    def __init__(self, checkpoint: str | Path, protocol_name: str = "han", detection: DetectionConfig | None = None):
        self.model, self.meta = load_model(checkpoint)
        self.classes, self.dataset = self.meta["classes"], self.meta["dataset"]
        self.proto = protocol(protocol_name)
        if detection is not None:  # UnAV-100: the detections `eval.detection` makes for the mAP
            self.proto = replace(self.proto, detection=detection)
        self.spec = dataset_spec(self.dataset)
        # a checkpoint's own feature files (how its training data was read), else every release
        # of the dataset by feature name (checkpoints written before they carried their own)
        self.files = self.meta.get("feature_files") or {}
        self.specs = {s.name: s for fs in reversed(self.spec.data.feature_sets) for s in fs.features}

    def feature_spec(self, feature: dict) -> FeatureSpec:
        """The on-disk layout of one of the model's features (rows on disk, pooling, file
        template, at the model's width): the checkpoint's own, else the dataset's release that
        names it, else (T, dim) of any length."""
        name, modality, dim = feature["name"], feature["modality"], feature["dim"]
        if name in self.files:
            f = self.files[name]
            return FeatureSpec(name, modality, dim, steps=int(f["steps"]), pool=int(f["pool"]), file=f["file"])
        if name in self.specs:
            return replace(self.specs[name], dim=dim)
        return FeatureSpec(name, modality, dim)

    def parse_files(self, paths: dict[str, str | Path]) -> list[dict]:
        """Reads `.npy` files (pickle off), checks and pools them as the shard writer does, and
        parses. A missing feature, a file of the wrong shape or row count, or files of
        different lengths is a `FeatureError` (a `ValueError`) naming the files."""
        wanted = [f["name"] for f in self.model.features]
        missing = [n for n in wanted if n not in paths]
        if missing:
            raise FeatureError(f"missing feature {missing[0]!r}: the model needs {wanted}")
        files = {f["name"]: Path(paths[f["name"]]) for f in self.model.features}
        feats = {f["name"]: read_feature(files[f["name"]], self.feature_spec(f)) for f in self.model.features}
        return self.parse(common_length(feats, files))

    def parse_video(self, paths: dict[str, str | Path], video: str | None = None) -> dict:
        """What `avvp-dist parse` prints: {"video": name, "events": [...]}. The name is
        `video`, else what the first file's path says under the dataset's file layout
        (`{vid}_{name}.npy`: the full name; LLP's `{name}/{id}.npy`: the 11-character id),
        else that file's stem."""
        events = self.parse_files(paths)
        if video is None:
            first = self.model.features[0]
            path = Path(paths[first["name"]])
            video = video_from_path(self.feature_spec(first), path) or path.stem
        return {"video": video, "events": events}

    @torch.no_grad()
    def parse(self, features: dict[str, np.ndarray]) -> list[dict]:
        """features: {name: (T, D)} -> events sorted by start, as the dataset's spec parses them
        (LLP: audio and visual events of one-second segments; UnAV-100: audio-visual events)."""
        out = self.model({k: torch.as_tensor(v, dtype=torch.float32)[None] for k, v in features.items()})
        P, p, p_a, p_v = (x[0].numpy() for x in (out.P, out.p, out.p_a, out.p_v))
        events = self.spec.events(P, p, p_a, p_v, self.classes, self.proto, self.spec.data.grid)
        return sorted(events, key=lambda e: (e["start"], e["modality"], e["class"]))
