"""Inference API: one video's feature files in, its events out (class, modality, seconds, score)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from avvp_dist.data.features import load_array
from avvp_dist.eval.datasets import dataset_spec
from avvp_dist.eval.detection import DetectionConfig
from avvp_dist.eval.protocol import protocol
from avvp_dist.model.checkpoint import load_model


class VideoParser:
    """>>> VideoParser("best_teacher.pt").parse_files({"vggish": "a.npy", "res152": "b.npy", ...})"""

    def __init__(self, checkpoint: str | Path, protocol_name: str = "han", detection: DetectionConfig | None = None):
        self.model, self.meta = load_model(checkpoint)
        self.classes, self.dataset = self.meta["classes"], self.meta["dataset"]
        self.proto = protocol(protocol_name)
        if detection is not None:  # UnAV-100: the detections `eval.detection` makes for the mAP
            self.proto = replace(self.proto, detection=detection)
        self.spec = dataset_spec(self.dataset)
        self.specs = {s.name: s for s in self.spec.data.features}

    def parse_files(self, paths: dict[str, str | Path]) -> list[dict]:
        """Reads `.npy` files (pickle off), pools them like the shard writer, and parses."""
        feats = {}
        for f in self.model.features:
            if f["name"] not in paths:
                raise ValueError(f"missing feature {f['name']!r}: the model needs {[x['name'] for x in self.model.features]}")
            arr = load_array(Path(paths[f["name"]])).astype(np.float32)
            spec = self.specs.get(f["name"])
            if spec is not None and spec.pool > 1 and spec.steps and arr.shape[0] == spec.steps:
                arr = arr.reshape(-1, spec.pool, arr.shape[1]).mean(1)
            if arr.ndim != 2 or arr.shape[1] != f["dim"]:
                raise ValueError(f"{paths[f['name']]}: shape {arr.shape}, the model expects (T, {f['dim']})")
            feats[f["name"]] = arr
        t = min(a.shape[0] for a in feats.values())
        return self.parse({k: v[:t] for k, v in feats.items()})

    @torch.no_grad()
    def parse(self, features: dict[str, np.ndarray]) -> list[dict]:
        """features: {name: (T, D)} -> events sorted by start, as the dataset's spec parses them
        (LLP: audio and visual events of one-second segments; UnAV-100: audio-visual events)."""
        out = self.model({k: torch.as_tensor(v, dtype=torch.float32)[None] for k, v in features.items()})
        P, p, p_a, p_v = (x[0].numpy() for x in (out.P, out.p, out.p_a, out.p_v))
        events = self.spec.events(P, p, p_a, p_v, self.classes, self.proto, self.spec.data.seconds_per_row)
        return sorted(events, key=lambda e: (e["start"], e["modality"], e["class"]))
