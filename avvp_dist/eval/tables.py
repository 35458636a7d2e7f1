"""The printed tables of an evaluation: LLP's 10 numbers and per-class F1, UnAV-100's mAP."""
from __future__ import annotations

from avvp_dist.eval.llp_metrics import METRIC_NAMES

LLP_HEAD = ["A", "V", "AV", "Type", "Event"]
UNAV_KEYS = [f"map@{t:.1f}" for t in (0.1, 0.3, 0.5, 0.7, 0.9)] + ["map_mean", "video_map", "seg_av", "evt_av"]


def format_llp_table(results: dict[str, dict]) -> str:
    """Rows: models; columns: segment-level then event-level A/V/AV/Type/Event."""
    head = f"{'model':<10} | " + " ".join(f"{h:>6}" for h in LLP_HEAD) + " | " + " ".join(f"{h:>6}" for h in LLP_HEAD)
    lines = [f"{'':<10} | {'segment-level':^34} | {'event-level':^34}", head, "-" * len(head)]
    for name, r in results.items():
        m = r["metrics"]
        lines.append(f"{name:<10} | " + " ".join(f"{m[k]:6.2f}" for k in METRIC_NAMES[:5]) + " | "
                     + " ".join(f"{m[k]:6.2f}" for k in METRIC_NAMES[5:]))
    return "\n".join(lines)


def format_per_class(per_class: dict, classes: list[str]) -> str:
    lines = [f"{'class':<26} {'A':>6} {'V':>6} {'AV':>6}"]
    for c in classes:
        vals = [per_class[m][c] for m in ("a", "v", "av")]
        lines.append(f"{c:<26} " + " ".join("     -" if v is None else f"{v:6.1f}" for v in vals))
    return "\n".join(lines)


def llp_tables(results: dict[str, dict], classes: list[str]) -> str:
    """The 10-number table, then each model's per-class segment-level F1."""
    parts = [format_llp_table(results)]
    for name, rep in results.items():
        parts.append(f"\nper-class segment-level F1 ({name})\n" + format_per_class(rep["per_class"], classes))
    return "\n".join(parts)


def format_unav_table(results: dict[str, dict], classes: list[str] | None = None) -> str:
    head = f"{'model':<10} | " + " ".join(f"{k:>9}" for k in UNAV_KEYS)
    return "\n".join([head, "-" * len(head)] + [f"{n:<10} | " + " ".join(f"{r['metrics'][k]:9.2f}" for k in UNAV_KEYS)
                                                for n, r in results.items()])
