"""What a user sees of a run: progress bar, JSONL and TensorBoard records, curves, summary (rank 0)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from avvp_dist.data.progress import progress


class RunLogger:
    """Rank 0 writes; other ranks get a logger that does nothing."""

    def __init__(self, run_dir: Path, enabled: bool, total_steps: int, start_step: int = 0):
        self.enabled, self.run_dir = enabled, Path(run_dir)
        self.bar = self.tb = None
        self.t_last, self.samples = time.perf_counter(), 0
        if not enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.jsonl = open(self.run_dir / "metrics.jsonl", "a")
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.run_dir / "tensorboard"))
        except ImportError:  # tensorboard is a dependency; a stripped install still trains
            self.tb = None
        self.bar = progress(total=total_steps, initial=start_step, desc="train", unit="step")

    def record(self, kind: str, step: int, values: dict) -> None:
        if not self.enabled:
            return
        self.jsonl.write(json.dumps({"kind": kind, "step": step, **values}) + "\n")
        self.jsonl.flush()
        if self.tb is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)):
                    self.tb.add_scalar(f"{kind}/{k}", v, step)

    def record_json(self, name: str, values: dict) -> None:
        """One JSON line appended to `name` in the run folder (records too wide for metrics.jsonl)."""
        if self.enabled:
            with open(self.run_dir / name, "a") as f:
                f.write(json.dumps(values) + "\n")

    def train_step(self, step: int, samples: int, loss: torch.Tensor, terms: dict[str, torch.Tensor], write: bool,
                   **extra) -> float:
        """One optimizer step's record: on the steps that `write`, the loss and every term in one
        host read, with `extra` plain values (lr, epoch, ...); returns samples/s as `step`."""
        values = {}
        if write:
            named = {"loss": loss, **terms}
            numbers = torch.stack([v.detach().to(loss.device, torch.float64).reshape(()) for v in named.values()])
            values = {**dict(zip(named, numbers.tolist())), **extra}
        return self.step(step, samples, values, write)

    def step(self, step: int, samples: int, values: dict, write: bool) -> float:
        """Advance the bar; returns samples/s since the last call that wrote."""
        self.samples += samples
        if not self.enabled:
            return 0.0
        self.bar.update(1)
        if not write:
            return 0.0
        now = time.perf_counter()
        rate = self.samples / max(now - self.t_last, 1e-9)
        self.t_last, self.samples = now, 0
        self.bar.set_postfix(loss=f"{values['loss']:.4f}", samples_s=f"{rate:.0f}")
        self.record("train", step, {**values, "samples_per_s": rate})
        return rate

    def close(self) -> None:
        if self.enabled:
            self.bar.close()
            self.jsonl.close()
            if self.tb is not None:
                self.tb.close()


def read_records(path: Path) -> list[dict]:
    """Records of metrics.jsonl; for a step logged twice (a resumed run), the last one wins."""
    out: dict[tuple, dict] = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            out[(r["kind"], r["step"])] = r
    return sorted(out.values(), key=lambda r: (r["kind"], r["step"]))


TELEMETRY_KEYS = ("mask_audio_pos", "mask_visual_pos", "mask_audio_ignored", "mask_visual_ignored",
                  "student_audio_high", "teacher_audio_high", "student_visual_high", "teacher_visual_high",
                  "teacher_gap")
TRUTH_KEYS = ("teacher_audio_precision", "teacher_visual_precision", "student_audio_precision",
              "student_visual_precision", "teacher_pair_precision", "gain_f1_audio", "gain_f1_visual")


def _lines(ax, records: list[dict], keys: tuple, title: str) -> None:
    for key in keys:
        pts = [(r["step"], r[key]) for r in records if r.get(key) is not None]
        if pts:
            ax.plot(*zip(*pts), label=key, marker="o" if len(pts) < 30 else None)
    ax.set_xlabel("step")
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def plot_curves(run_dir: Path) -> Path | None:
    """curves.png: training loss terms, validation metrics, the masks' shares and the
    probabilities' saturation (training telemetry), and the masks against the validation
    truth (`val/masks`), against steps."""
    records = read_records(run_dir / "metrics.jsonl")
    train = [r for r in records if r["kind"] == "train"]
    val = [r for r in records if r["kind"].startswith("val/") and r["kind"] != "val/masks"]
    if not train:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 7.6))
    _lines(axes[0, 0], train, ("loss", "weak", "pseudo", "cma"), "training loss")
    for r_kind in sorted({r["kind"] for r in val}):
        pts = [(r["step"], r["score"]) for r in val if r["kind"] == r_kind]
        axes[0, 1].plot(*zip(*pts), marker="o", label=r_kind.replace("val/", ""))
    axes[0, 1].set_xlabel("step")
    axes[0, 1].set_title("validation score")
    if val:
        axes[0, 1].legend()
    _lines(axes[1, 0], train, TELEMETRY_KEYS, "masks (shares at labelled positions), saturation, teacher gap")
    _lines(axes[1, 1], [r for r in records if r["kind"] == "val/masks"], TRUTH_KEYS, "masks against the validation truth")
    fig.tight_layout()
    fig.savefig(run_dir / "curves.png", dpi=100)
    plt.close(fig)
    return run_dir / "curves.png"
