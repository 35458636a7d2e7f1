"""Model-only checkpoints: weights, config, class list, feature spec, package version.

Loadable with `torch.load(weights_only=True)`: only tensors, dicts, lists, strings
and numbers are stored. This is what `eval`, `parse` and the inference API read.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch

from avvp_dist import __version__
from avvp_dist.model.config import ModelConfig
from avvp_dist.model.model import AVVPModel

FORMAT = "avvp_dist-model/1"


def save_model(model: AVVPModel, path: str | Path, classes: list[str], dataset: str, extra: dict | None = None) -> None:
    """Writes atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {
        "format": FORMAT,
        "version": __version__,
        "dataset": dataset,
        "classes": list(classes),
        "features": model.features,
        "model_config": dataclasses.asdict(model.cfg),
        "state_dict": {k: v.detach().cpu().float() if v.is_floating_point() else v.cpu()
                       for k, v in model.state_dict().items()},
        "extra": extra or {},
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(blob, tmp)
    os.replace(tmp, path)


def load_model(path: str | Path, map_location: str = "cpu") -> tuple[AVVPModel, dict]:
    """(model in eval mode, the checkpoint's metadata without the weights)."""
    blob = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ValueError(f"{path}: not an avvp_dist model checkpoint (format {blob.get('format') if isinstance(blob, dict) else None!r})")
    model = AVVPModel(blob["features"], len(blob["classes"]), ModelConfig(**blob["model_config"]))
    model.load_state_dict(blob["state_dict"])
    model.eval()
    meta = {k: v for k, v in blob.items() if k != "state_dict"}
    return model, meta
