"""Inference API: one video's feature files in, its events out (class, modality, seconds, score)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from avvp_dist.data.config import default_features
from avvp_dist.data.features import load_array
from avvp_dist.eval.protocol import binarize, protocol
from avvp_dist.eval.unav_metrics import av_events
from avvp_dist.model.checkpoint import load_model


class VideoParser:
    """>>> VideoParser("best_teacher.pt").parse_files({"vggish": "a.npy", "res152": "b.npy", ...})"""

    def __init__(self, checkpoint: str | Path, protocol_name: str = "han"):
        self.model, self.meta = load_model(checkpoint)
        self.classes, self.dataset = self.meta["classes"], self.meta["dataset"]
        self.proto = protocol(protocol_name)
        self.specs = {s.name: s for s in default_features(self.dataset)}

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
        """features: {name: (T, D)} -> events sorted by start. LLP: audio and visual events
        (one-second segments); UnAV-100: audio-visual events (0.32 s rows)."""
        out = self.model({k: torch.as_tensor(v, dtype=torch.float32)[None] for k, v in features.items()})
        P, p, p_a, p_v = (out[k][0].numpy() for k in ("P", "p", "p_a", "p_v"))
        events = []
        if self.dataset == "unav100":
            for c, s, e, score in av_events(P, p, len(P), self.proto.frame_threshold, self.proto.video_threshold):
                events.append({"class": self.classes[c], "modality": "audio-visual", "start": round(s, 2),
                               "end": round(e, 2), "score": round(score, 4)})
        else:
            pa, pv = binarize(P[None], p[None], p_a[None], p_v[None], self.proto)
            for m, pred in ((0, pa[0]), (1, pv[0])):
                for c in np.flatnonzero(pred.any(1)):
                    x = np.diff(np.concatenate([[0], pred[c], [0]]))
                    for a, b in zip(np.flatnonzero(x == 1), np.flatnonzero(x == -1)):
                        events.append({"class": self.classes[c], "modality": ("audio", "visual")[m],
                                       "start": float(a), "end": float(b),
                                       "score": round(float(P[a:b, m, c].mean() * p[c]), 4)})
        return sorted(events, key=lambda e: (e["start"], e["modality"], e["class"]))
