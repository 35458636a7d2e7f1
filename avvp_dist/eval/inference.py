"""Sharded inference: every rank scores its share of a split; results are gathered."""
from __future__ import annotations

import io
import json

import numpy as np
import torch

from avvp_dist.distributed.collectives import all_gather_bytes


@torch.no_grad()
def predict(model: torch.nn.Module, batches) -> dict:
    """Model outputs for every video of `batches` (a `ShardStream` in eval mode).

    Returns keys (N,), P: list of (T_i, 2, C) float32 trimmed to each video's length,
    p, p_a, p_v: (N, C), meta: list of shard meta dicts.
    """
    was_training = model.training
    model.eval()
    keys, P, p, p_a, p_v, meta = [], [], [], [], [], []
    device = next(model.parameters()).device
    for batch in batches:
        on_device = batch.to(device)
        out = model(on_device.features, on_device.mask)
        lengths = batch.mask.sum(1).tolist()
        keys += batch.keys
        meta += batch.meta
        P += [out.P[i, :n].float().cpu().numpy() for i, n in enumerate(lengths)]
        for dst, x in ((p, out.p), (p_a, out.p_a), (p_v, out.p_v)):
            dst.append(x.float().cpu().numpy())
    model.train(was_training)
    C = len(p[0][0]) if p else 0
    cat = lambda xs: np.concatenate(xs) if xs else np.zeros((0, C), np.float32)  # noqa: E731
    return {"keys": keys, "P": P, "p": cat(p), "p_a": cat(p_a), "p_v": cat(p_v), "meta": meta}


def _pack(pred: dict) -> bytes:
    buf = io.BytesIO()
    arrays = {"p": pred["p"], "p_a": pred["p_a"], "p_v": pred["p_v"],
              "lengths": np.array([x.shape[0] for x in pred["P"]], np.int64)}
    arrays["P"] = np.concatenate(pred["P"]) if pred["P"] else np.zeros((0, 2, pred["p"].shape[1]), np.float32)
    np.savez(buf, **arrays)
    head = json.dumps({"keys": pred["keys"], "meta": pred["meta"]}).encode()
    return len(head).to_bytes(8, "little") + head + buf.getvalue()


def _unpack(blob: bytes) -> dict:
    n = int.from_bytes(blob[:8], "little")
    head = json.loads(blob[8:8 + n])
    z = np.load(io.BytesIO(blob[8 + n:]), allow_pickle=False)
    cuts = np.cumsum(z["lengths"])[:-1]
    return {"keys": head["keys"], "meta": head["meta"], "P": list(np.split(z["P"], cuts)) if len(z["lengths"]) else [],
            "p": z["p"], "p_a": z["p_a"], "p_v": z["p_v"]}


def gather_predictions(pred: dict) -> dict:
    """All ranks' predictions on every rank, sorted by video key (so 1 and N ranks agree)."""
    parts = [_unpack(b) for b in all_gather_bytes(_pack(pred))]
    keys = [k for part in parts for k in part["keys"]]
    if len(set(keys)) != len(keys):
        raise ValueError("a video was scored by two ranks")
    order = np.argsort(keys, kind="stable")
    flat = {f: [x for part in parts for x in part[f]] for f in ("keys", "meta", "P")}
    out = {f: [flat[f][i] for i in order] for f in flat}
    for f in ("p", "p_a", "p_v"):
        out[f] = np.concatenate([part[f] for part in parts])[order]
    return out
