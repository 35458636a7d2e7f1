"""The plain PyTorch reference loop (benchmarks/plain_loop.py) trains: a few steps on a tiny
LLP-format folder, in both optimizer styles, with a falling loss and the rows the throughput
table reads."""
import sys
from pathlib import Path

import pytest

from conftest import synth_and_shard

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("optimizer, clip", [("adam", 0.0), ("adamw-fused", 1.0)])
def test_the_plain_loop_trains_with_a_falling_loss(tmp_path, optimizer, clip):
    sys.path.insert(0, str(REPO / "benchmarks"))
    from plain_loop import train_plain

    synth_and_shard(tmp_path, train=64, val=4, test=4)
    r = train_plain(tmp_path / "raw", steps=24, batch=16, workers=0, threads=1, optimizer=optimizer, clip=clip)
    losses = r["losses"]
    assert len(losses) == 24 and r["samples_per_s"] > 0 and r["optimizer"] == optimizer
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4 - 0.02, losses
    assert {"data", "student_forward", "backward", "optimizer", "step"} <= set(r["sections_s"])
