"""Benchmark: the fused EMA update and pseudo-mask pass against their naive forms.

    python benchmarks/kernels.py [--repeats 20] [--json kernels.json]

EMA, on the HAN model as the engine holds it (parameters flattened into one buffer)
and on a large synthetic model: a per-parameter Python loop, `torch._foreach_lerp_`,
the fused flat update (`EMATeacher.update`), and the bandwidth floor (one flat 3-pass
lerp over the same number of elements). Masks: the fused pass (`pseudo_masks`) against
a plain per-video, per-class loop, for LLP-sized and UnAV-100-sized batches.
Medians of `--repeats` after a warm-up, all measured side by side in one run.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from avvp_dist.kernels.masks import pseudo_masks, topk_counts
from avvp_dist.method.ema import EMATeacher, flatten_parameters_
from avvp_dist.model.config import ModelConfig
from avvp_dist.model.model import AVVPModel

LLP_FEATURES = [{"name": "vggish", "modality": "audio", "dim": 128}, {"name": "res152", "modality": "visual", "dim": 2048},
                {"name": "r2plus1d_18", "modality": "visual", "dim": 512}]


def median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def ema_rows(name: str, student: torch.nn.Module, repeats: int) -> list[dict]:
    flatten_parameters_(student)
    teacher = EMATeacher(student, decay=0.999, warmup=False)
    teacher.update(student)  # lays the teacher out like the student
    s_params, t_params = list(student.parameters()), list(teacher.module.parameters())
    n = sum(p.numel() for p in s_params)

    def loop():
        with torch.no_grad():
            for t, s in zip(t_params, s_params):
                t.mul_(0.999).add_(s, alpha=0.001)

    def foreach():
        with torch.no_grad():
            torch._foreach_lerp_(t_params, s_params, 0.001)

    flat_t, flat_s = torch.zeros(n), torch.randn(n)
    results = {
        "per-parameter loop": median_ms(loop, repeats),
        "torch._foreach_lerp_": median_ms(foreach, repeats),
        "fused flat (avvp_dist)": median_ms(lambda: teacher.update(student), repeats),
        "floor: one flat lerp": median_ms(lambda: flat_t.lerp_(flat_s, 0.001), repeats),
    }
    floor = results["floor: one flat lerp"]
    return [{"model": name, "params": n, "tensors": len(s_params), "method": k, "ms": v,
             "GB_s": 12 * n / (v / 1000) / 1e9, "vs_floor": v / floor} for k, v in results.items()]


def loop_masks(P, y, valid, k):
    """Plain form: per video, per modality, per class, with torch ops on (T,) vectors."""
    B, T, _, C = P.shape
    pos = torch.zeros(B, T, 2, C, dtype=torch.bool)
    for b in range(B):
        n = int(valid[b].sum())
        for m in range(2):
            for c in range(C):
                if y[b, c] > 0:
                    idx = torch.topk(P[b, :n, m, c], int(k[b])).indices
                    pos[b, idx, m, c] = True
    reliable = pos | (valid[:, :, None, None] & (y[:, None, None, :] == 0))
    return pos, reliable, pos[:, :, 0] & pos[:, :, 1]


def mask_rows(repeats: int) -> list[dict]:
    rows = []
    g = torch.Generator().manual_seed(0)
    for name, B, T, C in (("LLP batch", 16, 10, 25), ("UnAV-100 batch", 8, 190, 100)):
        P = torch.rand(B, T, 2, C, generator=g)
        valid = torch.arange(T)[None] < torch.randint(T // 2, T + 1, (B,), generator=g)[:, None]
        y = (torch.rand(B, C, generator=g) < 0.1).float()
        k = topk_counts(valid, 0.3)
        fused = median_ms(lambda: pseudo_masks(P, y, valid, "topk", k=k, backend="torch"), repeats)
        loop = median_ms(lambda: loop_masks(P, y, valid, k), max(3, repeats // 4))
        rows.append({"batch": name, "shape": [B, T, 2, C], "fused_ms": fused, "loop_ms": loop, "ratio": loop / fused})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    torch.manual_seed(0)
    han = AVVPModel(LLP_FEATURES, 25, ModelConfig())
    big = torch.nn.Sequential(*[torch.nn.Linear(500, 500) for _ in range(200)])  # 50.1M parameters, 400 tensors
    ema = ema_rows("HAN (LLP, d=512)", han, args.repeats) + ema_rows("synthetic 50M", big, max(5, args.repeats // 4))
    print(f"EMA update, {torch.get_num_threads()} threads (12 bytes per parameter: fp32 teacher and student)")
    print(f"{'model':<18}{'params':>11}{'tensors':>9}  {'method':<24}{'ms':>9}{'GB/s':>8}{'x floor':>9}")
    for r in ema:
        print(f"{r['model']:<18}{r['params']:>11,}{r['tensors']:>9}  {r['method']:<24}{r['ms']:>9.3f}{r['GB_s']:>8.2f}"
              f"{r['vs_floor']:>9.2f}")
    masks = mask_rows(args.repeats)
    print("\nPseudo masks (top-k, rho 0.3): fused pass vs per-video, per-class loop")
    print(f"{'batch':<16}{'B,T,2,C':>18}{'fused ms':>10}{'loop ms':>10}{'ratio':>8}")
    for r in masks:
        print(f"{r['batch']:<16}{str(tuple(r['shape'])):>18}{r['fused_ms']:>10.3f}{r['loop_ms']:>10.2f}{r['ratio']:>7.0f}x")
    if args.json:
        json.dump({"ema": ema, "masks": masks, "threads": torch.get_num_threads()}, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
