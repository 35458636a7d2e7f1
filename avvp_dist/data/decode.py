"""Safe decoding of one shard sample: `.npy` with pickle off and `.json`, everything checked.

Any other member type (`.pyd`, `.pickle`, `.pth`, ...) is refused without being
decoded. Shapes, dtype, finiteness and labels are checked against the manifest.
"""
from __future__ import annotations

import io
import json

import numpy as np

from avvp_dist.data.keys import decode_key
from avvp_dist.data.shards import Manifest, ShardError

DECODED = ("json", "npy")


def _meta(raw: dict, key: str, at: str, manifest: Manifest) -> dict:
    """The sample's `json` member: labels (in the class list) and meta, naming this video."""
    if "json" not in raw:
        raise ShardError(f"{at}: missing key 'json' (labels and meta)", "missing_key")
    try:
        meta = json.loads(raw["json"])
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ShardError(f"{at}: 'json' is not valid JSON ({e})", "bad_json") from e
    if not isinstance(meta, dict):
        raise ShardError(f"{at}: 'json' holds a {type(meta).__name__}, not an object of labels and meta", "bad_json")
    if meta.get("vid", key) != key:
        raise ShardError(f"{at}: its 'json' names another video, {meta['vid']!r}", "bad_key")
    known = set(manifest.classes)
    bad = [c for c in meta.get("labels", []) if c not in known]
    if not isinstance(meta.get("labels"), list) or bad:
        raise ShardError(f"{at}: labels {bad or meta.get('labels')!r} not in the class list", "unknown_label")
    return meta


def _array(raw: dict, f: dict, at: str, manifest: Manifest, is_label: bool) -> np.ndarray:
    """One feature's (or segment labels') `.npy` member, pickle off, checked against its manifest entry."""
    name = f"{f['name']}.npy"
    if name not in raw:
        raise ShardError(f"{at}: missing feature key {name!r}", "missing_key")
    try:
        arr = np.load(io.BytesIO(raw[name]), allow_pickle=False)
    except (ValueError, EOFError, OSError) as e:  # a pickle, a bad header, an empty member
        raise ShardError(f"{at}: {name!r} is not a plain .npy array ({type(e).__name__}: {e})", "bad_npy") from e
    if arr.dtype != np.dtype(manifest.dtype):
        raise ShardError(f"{at}: {name!r} has dtype {arr.dtype}, manifest says {manifest.dtype}", "bad_dtype")
    if arr.ndim != 2 or arr.shape[1] != f["dim"] or (f["steps"] and arr.shape[0] != f["steps"]) or not arr.shape[0]:
        want = (f["steps"] or "T", f["dim"])
        raise ShardError(f"{at}: {name!r} has shape {arr.shape}, manifest says {want}", "bad_shape")
    if not np.isfinite(arr).all():
        raise ShardError(f"{at}: {name!r} contains NaN or Inf", "not_finite")
    if is_label and (arr.min() < 0 or arr.max() > 1):
        raise ShardError(f"{at}: segment labels {name!r} outside [0, 1]", "bad_labels")
    return arr


def decode_sample(raw: dict, manifest: Manifest, where: str,
                  sha256: str | None = None) -> tuple[str, dict[str, np.ndarray], dict]:
    """(video name, {feature or segment-label name: (T, D) array}, meta) from WebDataset's
    grouped member dict.

    `raw` maps `__key__` to the shard key and each member suffix (`json`, `vggish.npy`)
    to its bytes (`__sha256__`: their digest, from `read_run`); `sha256`, if given, is the
    manifest's for this sample. `where` names the shard in errors, which name the video.
    """
    try:
        key = decode_key(raw.get("__key__", ""))
    except ValueError as e:
        raise ShardError(f"{where}: {e}", "bad_key") from e
    at = f"{where}: sample {key!r}"
    if sha256 is not None and raw.get("__sha256__") != sha256:
        raise ShardError(f"{at}: sha256 of its members differs from the manifest (corrupted or rewritten)",
                         "checksum")
    for suffix in raw:
        if not suffix.startswith("__") and suffix.rsplit(".", 1)[-1] not in DECODED:
            raise ShardError(f"{at}: member '.{suffix}' refused (only .npy and .json are decoded; "
                             "pickle-type members are never loaded)", "refused_member")
    meta = _meta(raw, key, at, manifest)
    label_names = {f["name"] for f in manifest.labels}
    feats = {f["name"]: _array(raw, f, at, manifest, f["name"] in label_names)
             for f in [*manifest.features, *manifest.labels]}
    lengths = {arr.shape[0] for arr in feats.values()}
    if len(lengths) > 1:
        raise ShardError(f"{at}: features have different lengths {sorted(lengths)}", "bad_shape")
    return key, feats, meta
