"""Benchmark: the fused EMA update and pseudo-mask pass against their naive forms.

    python benchmarks/kernels.py [--repeats 20] [--json kernels.json] [--device cuda]

EMA, on the HAN model as the engine holds it (parameters flattened into one buffer)
and on a large synthetic model: a per-parameter Python loop, `torch._foreach_lerp_`,
the teacher's two updates (`EMATeacher.update` with `ema=foreach`, the default, and with
`ema=flat`: one lerp or, on CUDA, one Triton kernel per contiguous run), and the bandwidth floor (one flat 3-pass
lerp over the same number of elements). Masks: the fused pass (`pseudo_masks`) against
a plain per-video, per-class loop, for LLP-sized and UnAV-100-sized batches.
Medians of `--repeats` after a warm-up, all measured side by side in one run. On
`--device cuda` every timing synchronises the device, the fused forms run the compiled
Triton kernels (and their torch back ends beside them), and the device's copy bandwidth
(`dst.copy_(src)`, 1 GiB) is measured as the reference for the EMA's GB/s.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from avvp_dist.kernels.backend import use_triton
from avvp_dist.kernels.masks import pseudo_masks, topk_counts
from avvp_dist.method.ema import EMATeacher, flatten_parameters_
from avvp_dist.model.config import ModelConfig
from avvp_dist.model.model import AVVPModel

LLP_FEATURES = [{"name": "vggish", "modality": "audio", "dim": 128}, {"name": "res152", "modality": "visual", "dim": 2048},
                {"name": "r2plus1d_18", "modality": "visual", "dim": 512}]


ROWS: str | None = None  # --rows: each row appended here (JSON lines) as soon as it is measured


def emit(row: dict) -> None:
    if ROWS:
        with open(ROWS, "a") as f:
            f.write(json.dumps(row) + "\n")


def _sync() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        _sync()
        t0 = time.perf_counter()
        fn()
        _sync()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def copy_bandwidth(device: str, repeats: int, nbytes: int = 1 << 30) -> dict:
    """GB/s of `dst.copy_(src)` of `nbytes` (bytes read + bytes written)."""
    src = torch.empty(nbytes // 4, device=device).uniform_()
    dst = torch.empty_like(src)
    ms = median_ms(lambda: dst.copy_(src), repeats)
    return {"bytes": nbytes, "ms": ms, "GB_s": 2 * nbytes / (ms / 1000) / 1e9}


def ema_rows(name: str, student: torch.nn.Module, repeats: int, device: str = "cpu") -> list[dict]:
    student = student.to(device)
    flatten_parameters_(student)
    teacher = EMATeacher(student, decay=0.999, warmup=False, ema="flat")  # auto: Triton on CUDA
    teacher.update(student)  # lays the teacher out like the student
    torch_teacher = EMATeacher(student, decay=0.999, warmup=False, ema="flat", backend="torch")
    torch_teacher.update(student)
    foreach_teacher = EMATeacher(student, decay=0.999, warmup=False, ema="foreach")
    s_params, t_params = list(student.parameters()), list(teacher.module.parameters())
    n = sum(p.numel() for p in s_params)

    def loop():
        with torch.no_grad():
            for t, s in zip(t_params, s_params):
                t.mul_(0.999).add_(s, alpha=0.001)

    def foreach():
        with torch.no_grad():
            torch._foreach_lerp_(t_params, s_params, 0.001)

    flat_t, flat_s = torch.zeros(n, device=device), torch.randn(n, device=device)
    # the flat teacher's kernel as `ema_update_` picks it (auto: Triton on CUDA), in the row's name
    kernel = "Triton kernel" if use_triton(teacher._pairs[0][0], "auto") else "torch lerp"
    timed = {
        "floor: one flat lerp": lambda: flat_t.lerp_(flat_s, 0.001),
        "per-parameter loop": loop,
        "torch._foreach_lerp_": foreach,
        "EMATeacher foreach (the default)": lambda: foreach_teacher.update(student),
        f"EMATeacher flat (ema=flat), {kernel}": lambda: teacher.update(student),
    }
    if device != "cpu":  # auto picks Triton on CUDA; its torch back end beside it
        timed["EMATeacher flat (ema=flat), torch lerp"] = lambda: torch_teacher.update(student)
    rows, floor = [], None
    for method, fn in timed.items():
        ms = median_ms(fn, repeats)
        floor = floor or ms
        rows.append({"model": name, "params": n, "tensors": len(s_params), "method": method, "ms": ms,
                     "GB_s": 12 * n / (ms / 1000) / 1e9, "vs_floor": ms / floor})
        emit(rows[-1])
    return rows


def loop_masks(P, y, valid, k):
    """Plain form: per video, per modality, per class, with torch ops on (T,) vectors."""
    B, T, _, C = P.shape
    pos = torch.zeros(B, T, 2, C, dtype=torch.bool, device=P.device)
    for b in range(B):
        n = int(valid[b].sum())
        for m in range(2):
            for c in range(C):
                if y[b, c] > 0:
                    idx = torch.topk(P[b, :n, m, c], int(k[b])).indices
                    pos[b, idx, m, c] = True
    reliable = pos | (valid[:, :, None, None] & (y[:, None, None, :] == 0))
    return pos, reliable, pos[:, :, 0] & pos[:, :, 1]


def mask_rows(repeats: int, device: str = "cpu") -> list[dict]:
    rows = []
    g = torch.Generator().manual_seed(0)
    for name, B, T, C in (("LLP batch", 16, 10, 25), ("UnAV-100 batch", 8, 190, 100)):
        P = torch.rand(B, T, 2, C, generator=g)
        valid = torch.arange(T)[None] < torch.randint(T // 2, T + 1, (B,), generator=g)[:, None]
        y = (torch.rand(B, C, generator=g) < 0.1).float()
        P, valid, y = P.to(device), valid.to(device), y.to(device)
        k = topk_counts(valid, 0.3)
        backend = "triton" if device != "cpu" else "torch"
        fused = median_ms(lambda: pseudo_masks(P, y, valid, "topk", k=k, backend=backend), repeats)
        loop = median_ms(lambda: loop_masks(P, y, valid, k), max(3, repeats // 4))
        row = {"batch": name, "shape": [B, T, 2, C], "backend": backend, "fused_ms": fused, "loop_ms": loop,
               "ratio": loop / fused}
        if device != "cpu":
            row["torch_backend_ms"] = median_ms(lambda: pseudo_masks(P, y, valid, "topk", k=k, backend="torch"), repeats)
        rows.append(row)
        emit({"kind": "masks", **row})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--rows", help="append each row here (JSON lines) as soon as it is measured")
    args = ap.parse_args()
    global ROWS
    ROWS = args.rows
    torch.manual_seed(0)
    dev = args.device
    where = torch.cuda.get_device_name() if dev.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
    copy = copy_bandwidth(dev, args.repeats, 1 << 30 if dev.startswith("cuda") else 1 << 28)
    emit({"kind": "copy", **copy})
    print(f"device: {where}; copy bandwidth {copy['GB_s']:.1f} GB/s (dst.copy_(src) of {copy['bytes'] >> 20} MiB, "
          "read + write)\n")
    han = AVVPModel(LLP_FEATURES, 25, ModelConfig())
    big = torch.nn.Sequential(*[torch.nn.Linear(500, 500) for _ in range(200)])  # 50.1M parameters, 400 tensors
    ema = (ema_rows("HAN (LLP, d=512)", han, args.repeats, dev)
           + ema_rows("synthetic 50M", big, max(5, args.repeats // 4), dev))
    for r in ema:
        r["vs_copy"] = r["GB_s"] / copy["GB_s"]  # (the rows file has each row without it, as it was measured)
    print("EMA update (12 bytes per parameter: fp32 teacher read + write, fp32 student read)")
    print(f"{'model':<18}{'params':>11}{'tensors':>9}  {'method':<40}{'ms':>9}{'GB/s':>8}{'x floor':>9}{'of copy':>9}")
    for r in ema:
        print(f"{r['model']:<18}{r['params']:>11,}{r['tensors']:>9}  {r['method']:<40}{r['ms']:>9.3f}{r['GB_s']:>8.2f}"
              f"{r['vs_floor']:>9.2f}{100 * r['vs_copy']:>8.0f}%")
    masks = mask_rows(args.repeats, dev)
    print("\nPseudo masks (top-k, rho 0.3): fused pass vs per-video, per-class loop")
    print(f"{'batch':<16}{'B,T,2,C':>18}{'backend':>8}{'fused ms':>10}{'loop ms':>10}{'ratio':>8}")
    for r in masks:
        print(f"{r['batch']:<16}{str(tuple(r['shape'])):>18}{r['backend']:>8}{r['fused_ms']:>10.3f}{r['loop_ms']:>10.2f}"
              f"{r['ratio']:>7.0f}x" + (f"  (torch back end {r['torch_backend_ms']:.3f} ms)" if "torch_backend_ms" in r
                                        else ""))
    if args.json:
        json.dump({"device": where, "copy": copy, "ema": ema, "masks": masks, "threads": torch.get_num_threads()},
                  open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
