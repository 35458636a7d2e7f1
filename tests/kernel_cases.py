"""Plain references for the fused kernels and the comparisons the kernel tests run.

Run as a script (`python kernel_cases.py BACKEND DEVICE`) to check a back end in a
fresh process, e.g. the Triton kernels under `TRITON_INTERPRET=1`.
"""
from __future__ import annotations

import sys

import numpy as np
import torch


def ref_masks(P, y, valid, mode, gamma, tau_min, k, tau_low, absent_negatives=True):
    """Straight from the definition: loops over videos, modalities, classes, segments."""
    B, T, _, C = P.shape
    pos = np.zeros((B, T, 2, C), bool)
    rel = np.zeros((B, T, 2, C), bool)
    for b in range(B):
        ts = [t for t in range(T) if valid[b, t]]
        for m in range(2):
            for c in range(C):
                vals = {t: float(P[b, t, m, c]) for t in ts}
                if mode == "adaptive":
                    tau = max(tau_min, gamma * sum(vals.values()) / len(ts))
                    hits = {t for t in ts if vals[t] >= tau}
                else:
                    hits = set(sorted(ts, key=lambda t: (-vals[t], t))[: int(k[b])])
                for t in ts:
                    if y[b, c]:
                        pos[b, t, m, c] = t in hits
                        rel[b, t, m, c] = t in hits or (tau_low > 0 and vals[t] < tau_low)
                    else:
                        rel[b, t, m, c] = absent_negatives
    return pos, rel, pos[:, :, 0] & pos[:, :, 1]


def draw_case(seed, B, T, C, mode, gamma=1.2, tau_min=0.3, margin=1e-5):
    """Random teacher probabilities with padding, unlabelled classes, exact ties (for top-k),
    and no value within `margin` of its adaptive threshold."""
    rng = np.random.default_rng(seed)
    P = rng.random((B, T, 2, C)).astype(np.float32)
    lengths = rng.integers(1, T + 1, B)
    lengths[0] = T
    valid = np.arange(T)[None, :] < lengths[:, None]
    y = (rng.random((B, C)) < 0.4).astype(np.float32)
    y[:, 0] = 1  # a labelled class in every video
    y[:, -1] = 0  # and an unlabelled one
    if mode == "topk":
        P[:, 1::3] = P[:, 0:1]  # exact ties across segments
        return P, y, valid
    for _ in range(20):
        n = valid.sum(1)[:, None, None].astype(np.float64)
        tau = np.maximum(tau_min, gamma * (P.astype(np.float64) * valid[:, :, None, None]).sum(1) / n)[:, None]
        near = (np.abs(P - tau) < margin) & valid[:, :, None, None]
        if not near.any():
            return P, y, valid
        P = np.where(near, np.clip(P + 3 * margin, 0, 1), P).astype(np.float32)
    raise RuntimeError("could not draw a case away from the thresholds")


CASES = [  # (B, T, C): LLP-like, UnAV-like (longer, more classes), degenerate
    (4, 10, 25), (3, 37, 20), (2, 1, 3), (5, 12, 7),
]


def check_masks(backend: str, device: str) -> None:
    from avvp_dist.kernels.masks import pseudo_masks, topk_counts

    for i, (B, T, C) in enumerate(CASES):
        for mode in ("adaptive", "topk"):
            for tau_low, absent in ((0.0, True), (0.2, True), (0.0, False), (0.2, False)):
                P, y, valid = draw_case(100 * i + len(mode), B, T, C, mode)
                k = topk_counts(torch.from_numpy(valid), rho=0.3)
                got = pseudo_masks(torch.from_numpy(P).to(device), torch.from_numpy(y).to(device),
                                   torch.from_numpy(valid).to(device), mode, gamma=1.2, tau_min=0.3, k=k,
                                   tau_low=tau_low, backend=backend, absent_negatives=absent)
                want = ref_masks(P, y, valid, mode, 1.2, 0.3, k.numpy(), tau_low, absent)
                for name, g, w in zip(("pos", "reliable", "pairs"), got, want):
                    g = g.cpu().numpy()
                    assert g.dtype == bool and g.shape == w.shape, (name, g.shape, w.shape)
                    bad = np.argwhere(g != w)
                    assert not len(bad), (f"{backend} {mode} tau_low={tau_low} absent_negatives={absent} "
                                          f"case {B, T, C}: {name} differs at {bad[:5]}")
                if not absent and tau_low == 0:  # the selected positions alone: the paper's masked BCE
                    assert torch.equal(got.reliable, got.pos)
                assert got.pos.any() and (~got.reliable).any() or T == 1


def ref_ema(teacher, student, decay):
    return (teacher.double() * decay + student.double() * (1 - decay)).float()


def check_ema(backend: str, device: str) -> None:
    from avvp_dist.kernels.ema import ema_update_

    g = torch.Generator().manual_seed(0)
    for n, dtype, decay in ((1, torch.float32, 0.5), (4097, torch.float32, 0.999), (10_000, torch.bfloat16, 0.9),
                            (3000, torch.float16, 0.99)):
        teacher = torch.randn(n, generator=g)
        student = torch.randn(n, generator=g).to(dtype)
        want = ref_ema(teacher, student.float(), decay)
        t = teacher.to(device)
        ema_update_(t, student.to(device), decay, backend=backend)
        torch.testing.assert_close(t.cpu(), want, rtol=2e-6, atol=2e-7)


if __name__ == "__main__":
    backend, device = sys.argv[1], sys.argv[2]
    check_masks(backend, device)
    check_ema(backend, device)
    print(f"kernels ok: backend={backend} device={device}")
