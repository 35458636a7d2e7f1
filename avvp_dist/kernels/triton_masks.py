"""Triton kernel for the pseudo masks: one program per (video, block of classes), both modalities."""
from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _masks_kernel(p_ptr, y_ptr, valid_ptr, k_ptr, pos_ptr, rel_ptr, pair_ptr,
                  T, C, gamma, tau_min, tau_low,
                  TOPK: tl.constexpr, USE_LOW: tl.constexpr, ABSENT: tl.constexpr, BLOCK_T: tl.constexpr,
                  BLOCK_C: tl.constexpr):
    b = tl.program_id(0)
    cs = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    ts = tl.arange(0, BLOCK_T)
    c_in = cs < C
    t_in = ts < T
    valid = tl.load(valid_ptr + b * T + ts, mask=t_in, other=0)  # (BLOCK_T,) int8
    y = tl.load(y_ptr + b * C + cs, mask=c_in, other=0.0)  # (BLOCK_C,)
    n_valid = tl.sum(valid.to(tl.int32), axis=0)
    vt = tl.where(valid != 0, 1, 0)[:, None] * tl.where(c_in, 1, 0)[None, :]  # (BLOCK_T, BLOCK_C) 0/1
    lab = tl.where(y > 0.5, 1, 0)[None, :]
    inside = (tl.where(t_in, 1, 0)[:, None] * tl.where(c_in, 1, 0)[None, :]) != 0
    pair = tl.full((BLOCK_T, BLOCK_C), 1, tl.int32)
    for m in tl.static_range(2):
        offs = ((b * T + ts[:, None]) * 2 + m) * C + cs[None, :]
        p = tl.load(p_ptr + offs, mask=vt != 0, other=0.0)
        if TOPK:
            k = tl.load(k_ptr + b)
            rank = tl.zeros((BLOCK_T, BLOCK_C), dtype=tl.int32)
            for j in range(0, T):
                vj = tl.load(valid_ptr + b * T + j).to(tl.int32)
                pj = tl.load(p_ptr + ((b * T + j) * 2 + m) * C + cs, mask=c_in, other=0.0)[None, :]
                before = tl.where(pj > p, 1, 0) + tl.where(pj == p, 1, 0) * tl.where(ts[:, None] > j, 1, 0)
                rank += vj * before
            hit = tl.where(rank < k, 1, 0)
        else:
            mean = tl.sum(p * vt, axis=0) / tl.maximum(n_valid, 1).to(tl.float32)
            tau = tl.maximum(gamma * mean, tau_min)
            hit = tl.where(p >= tau[None, :], 1, 0)
        pos = hit * vt * lab
        neg = vt * (1 - lab) * ABSENT  # every valid segment of an absent class, when asked for
        if USE_LOW:
            neg += vt * lab * tl.where(p < tau_low, 1, 0) * (1 - pos)
        tl.store(pos_ptr + offs, pos.to(tl.int8), mask=inside)
        tl.store(rel_ptr + offs, (pos + neg).to(tl.int8), mask=inside)
        pair = pair * pos
    tl.store(pair_ptr + (b * T + ts[:, None]) * C + cs[None, :], pair.to(tl.int8), mask=inside)


def pseudo_masks_triton(P, y, valid, mode, gamma, tau_min, k, tau_low, absent_negatives=True):
    """Same contract as `masks.pseudo_masks`; P (B, T, 2, C) is made contiguous fp32."""
    B, T, _, C = P.shape
    P = P.float().contiguous()
    y = y.float().contiguous()
    valid8 = valid.to(torch.int8).contiguous()
    k = (k if k is not None else torch.zeros(B, dtype=torch.int32)).to(device=P.device, dtype=torch.int32).contiguous()
    pos = torch.empty((B, T, 2, C), dtype=torch.int8, device=P.device)
    rel = torch.empty_like(pos)
    pair = torch.empty((B, T, C), dtype=torch.int8, device=P.device)
    block_c = min(32, triton.next_power_of_2(C))
    grid = (B, triton.cdiv(C, block_c))
    _masks_kernel[grid](P, y, valid8, k, pos, rel, pair, T, C, float(gamma), float(tau_min), float(tau_low),
                        TOPK=mode == "topk", USE_LOW=tau_low > 0,
                        ABSENT=int(absent_negatives), BLOCK_T=triton.next_power_of_2(T), BLOCK_C=block_c)
    return pos.bool(), rel.bool(), pair.bool()
