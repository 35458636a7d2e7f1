"""Model-only checkpoints: weights, config, class list, feature spec, package version.

Loadable with `torch.load(weights_only=True)`: only tensors, dicts, lists, strings
and numbers are stored. This is what `eval`, `parse` and the inference API read.
"""
from __future__ import annotations

import dataclasses
import os
import pickle
import re
from pathlib import Path

import torch

from avvp_dist import __version__
from avvp_dist.model.config import ModelConfig
from avvp_dist.model.model import AVVPModel

FORMAT = "avvp_dist-model/1"


class CheckpointError(ValueError):
    """A checkpoint is refused, malformed, or does not fit what it is used with; the message names it."""


def weights_only_load(path: str | Path, map_location=None, safe_globals: list | tuple = ()):
    """`torch.load(weights_only=True)`, with `safe_globals` also allowed; a pickled object of any
    other kind is a `CheckpointError` naming the file (and the global torch refused), raised
    before the object is built."""
    with torch.serialization.safe_globals(list(safe_globals)):
        try:
            return torch.load(path, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as e:
            found = re.search(r"GLOBAL ([\w.]+)", str(e))  # torch names the global it refused
            what = f" ({found.group(1)})" if found else ""
            raise CheckpointError(f"{path}: refused: it holds an object that is not weights or plain data{what}; "
                                  "avvp_dist never unpickles it") from None


def describe_features(features: list[dict]) -> str:
    return ", ".join(f"{f['name']} ({f['modality']}, {f['dim']})" for f in features)


def check_fits_data(path: str | Path, meta: dict, classes: list[str], features: list[dict]) -> None:
    """A model checkpoint against the data it is to score: the same classes and input features."""
    if meta["classes"] != list(classes):
        raise CheckpointError(f"{path}: its {len(meta['classes'])} classes differ from the shards' {len(classes)}"
                              + ("" if len(meta["classes"]) != len(classes) else " (same count, other names or order)"))
    mine = [(f["name"], f["modality"], int(f["dim"])) for f in meta["features"]]
    theirs = [(f["name"], f["modality"], int(f["dim"])) for f in features]
    if mine != theirs:
        raise CheckpointError(f"{path}: the model takes features {describe_features(meta['features'])}; "
                              f"the shards hold {describe_features(features)}")


def save_model(model: AVVPModel, path: str | Path, classes: list[str], dataset: str, extra: dict | None = None,
               feature_files: dict[str, dict] | None = None) -> None:
    """Writes atomically (temporary file, then rename). feature_files: {feature name: {steps,
    pool, file}}, how the training data's feature files were read (the shard manifest's
    `source`), for `parse`."""
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
        "feature_files": feature_files or {},
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(blob, tmp)
    os.replace(tmp, path)


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[AVVPModel, dict]:
    """(model in eval mode on `map_location`, the checkpoint's metadata without the weights)."""
    blob = weights_only_load(path, map_location)
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an avvp_dist model checkpoint "
                              f"(format {blob.get('format') if isinstance(blob, dict) else None!r})")
    try:
        model = AVVPModel(blob["features"], len(blob["classes"]), ModelConfig(**blob["model_config"]))
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: malformed model checkpoint ({type(e).__name__}: {e})") from e
    missing, unexpected = sorted(set(model.state_dict()) - set(blob["state_dict"])), \
        sorted(set(blob["state_dict"]) - set(model.state_dict()))
    shapes = [f"{k}: weights {tuple(blob['state_dict'][k].shape)}, model {tuple(v.shape)}"
              for k, v in model.state_dict().items() if k in blob["state_dict"] and blob["state_dict"][k].shape != v.shape]
    if missing or unexpected or shapes:
        raise CheckpointError(
            f"{path}: its weights do not fit the model its config describes ({blob['model_config']}): "
            + "; ".join(filter(None, [shapes and "shapes differ: " + ", ".join(shapes[:4]),
                                      missing and f"missing: {', '.join(missing[:4])}",
                                      unexpected and f"unexpected: {', '.join(unexpected[:4])}"])))
    model.load_state_dict(blob["state_dict"])
    model.to(map_location).eval()
    meta = {k: v for k, v in blob.items() if k != "state_dict"}
    return model, meta
