"""Benchmark: vectorised LLP metrics vs a per-video, per-class loop in the style of HAN's evaluator.

    python benchmarks/llp_metrics.py [--videos 1849] [--repeats 5]

1,849 videos = LLP val + test. Prints both times (median of repeats after a warm-up),
the ratio, and checks that both give the same 10 numbers.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from avvp_dist.eval.llp_metrics import METRIC_NAMES, llp_metrics


def _runs(seq):
    out, t = [], 0
    while t < len(seq):
        if seq[t]:
            s = t
            while t < len(seq) and seq[t]:
                t += 1
            out.append((s, t))
        else:
            t += 1
    return out


def _event_counts(p, g):
    pe, ge = _runs(p), _runs(g)
    iou = lambda a, b: max(0, min(a[1], b[1]) - max(a[0], b[0])) / (max(a[1], b[1]) - min(a[0], b[0]))  # noqa: E731
    tp = sum(any(iou(e, x) >= 0.5 for x in ge) for e in pe)
    fn = sum(not any(iou(e, x) >= 0.5 for e in pe) for x in ge)
    return tp, len(pe) - tp, fn


def _seg_counts(p, g):
    return int((p * g).sum()), int((p * (1 - g)).sum()), int(((1 - p) * g).sum())


def _f(counts):
    fs = [2 * tp / (2 * tp + fp + fn) for tp, fp, fn in counts if tp + fp or tp + fn]
    return sum(fs) / len(fs) if fs else 1.0


def loop_metrics(pa, pv, ga, gv):
    """What published AVVP code does: Python loops over videos and classes."""
    out = {}
    for level, counts in (("seg", _seg_counts), ("evt", _event_counts)):
        per = {k: [] for k in ("a", "v", "av", "event")}
        for n in range(len(pa)):
            ca = [counts(pa[n, c], ga[n, c]) for c in range(pa.shape[1])]
            cv = [counts(pv[n, c], gv[n, c]) for c in range(pa.shape[1])]
            cav = [counts(pa[n, c] * pv[n, c], ga[n, c] * gv[n, c]) for c in range(pa.shape[1])]
            per["a"].append(_f(ca))
            per["v"].append(_f(cv))
            per["av"].append(_f(cav))
            per["event"].append(_f([tuple(x + y for x, y in zip(a, v)) for a, v in zip(ca, cv)]))
        for k in ("a", "v", "av"):
            out[f"{level}_{k}"] = 100 * float(np.mean(per[k]))
        out[f"{level}_type"] = (out[f"{level}_a"] + out[f"{level}_v"] + out[f"{level}_av"]) / 3
        out[f"{level}_event"] = 100 * float(np.mean(per["event"]))
    return out


def _time(fn, args, repeats):
    fn(*args)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn(*args)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=1849)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    # sparse, event-like arrays: most classes absent, present ones in runs
    present = rng.random((4, args.videos, 25, 1)) < 0.12
    arrays = (present & (rng.random((4, args.videos, 25, 10)) < 0.7)).astype(np.int8)
    t_vec, m_vec = _time(llp_metrics, arrays, args.repeats)
    t_loop, m_loop = _time(loop_metrics, arrays, max(1, args.repeats // 2))
    diff = max(abs(m_vec[k] - m_loop[k]) for k in METRIC_NAMES)
    print(f"LLP metrics on {args.videos} videos x 25 classes x 10 segments (median of repeats)")
    print(f"{'implementation':<28}{'seconds':>10}")
    print(f"{'per-video loop (HAN style)':<28}{t_loop:>10.4f}")
    print(f"{'vectorised (avvp_dist)':<28}{t_vec:>10.4f}")
    print(f"speed-up: {t_loop / t_vec:.1f}x   max |difference| of the 10 numbers: {diff:.2e}")
    if args.json:
        json.dump({"videos": args.videos, "loop_s": t_loop, "vectorised_s": t_vec, "ratio": t_loop / t_vec,
                   "max_abs_diff": diff}, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
