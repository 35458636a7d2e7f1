"""Streaming loader in real processes: 2 ranks x 2 workers over uneven shards, exact resume."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from avvp_dist.data.config import DataConfig
from avvp_dist.data.stream import ShardStream

HERE = Path(__file__).resolve().parent
pytestmark = pytest.mark.timeout(180)


def run_ranks(tmp_path, world, args, tag="run"):
    """Starts `world` worker processes with RANK/WORLD_SIZE set; returns their outputs."""
    procs, outs = [], []
    for rank in range(world):
        a = dict(args, out=str(tmp_path / f"{tag}{rank}.json"), state=str(tmp_path / f"{tag}-state{rank}.json"))
        if args.get("resume"):
            a["resume"] = str(tmp_path / f"{args['resume']}-state{rank}.json")
        (tmp_path / f"{tag}-args{rank}.json").write_text(json.dumps(a))
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE=str(world), PYTHONPATH=str(HERE))
        procs.append(subprocess.Popen([sys.executable, str(HERE / "stream_worker.py"), str(tmp_path / f"{tag}-args{rank}.json")],
                                      env=env, stderr=subprocess.PIPE, text=True))
        outs.append(a["out"])
    for p in procs:
        _, err = p.communicate(timeout=150)
        assert p.returncode == 0, err
    return [json.loads(Path(o).read_text()) for o in outs]


DATA = {"batch_size": 2, "num_workers": 2, "piece_size": 3, "shuffle_window": 2}


@pytest.mark.slow
def test_two_ranks_two_workers_uneven_shards(uneven_shards, tmp_path):
    n = 10 + 5 + 7 + 3 + 9
    outs = run_ranks(tmp_path, 2, {"shards": str(uneven_shards), "data": DATA, "epochs": 2})
    for epoch in ("0", "1"):
        per_rank = [o["epochs"][epoch] for o in outs]
        assert len(per_rank[0]) == len(per_rank[1]) == outs[0]["len"] == n // 4, "unequal batch counts"
        keys = [k for batches in per_rank for b in batches for k in b]
        assert len(keys) == len(set(keys)), "a sample was delivered twice in one epoch"
        reports = [o["reports"][int(epoch)] for o in outs]
        assert all(r["dropped_to_equalise"] == n - len(keys) == n % 4 for r in reports)
        assert all(r["skipped"] == 0 for r in reports)
    assert outs[0]["epochs"]["0"] != outs[0]["epochs"]["1"], "same assignment in the next epoch"
    assert set(k for b in outs[0]["epochs"]["0"] for k in b) != set(k for b in outs[0]["epochs"]["1"] for k in b)


@pytest.mark.slow
def test_resume_mid_epoch_in_a_fresh_process(uneven_shards, tmp_path):
    base = {"shards": str(uneven_shards), "data": DATA, "epochs": 2, "seed": 3}
    full = run_ranks(tmp_path, 2, base, "full")
    run_ranks(tmp_path, 2, dict(base, stop_after=3, stop_epoch=0), "first")
    rest = run_ranks(tmp_path, 2, dict(base, resume="first"), "rest")
    for f, r in zip(full, rest):
        assert r["epochs"]["0"] == f["epochs"]["0"][3:], "remaining batches of the epoch differ"
        assert r["epochs"]["1"] == f["epochs"]["1"]
        assert r["checksums"] == f["checksums"][3:]


def test_resume_in_process_every_position(uneven_shards):
    """A stream restored at any batch of an epoch continues with exactly the same batches."""
    cfg = DataConfig(batch_size=3, num_workers=0, piece_size=2, shuffle_window=3)
    ref = ShardStream(uneven_shards, cfg, rank=1, world_size=2, seed=5)
    ref.epoch = 1
    full = [b.keys for b in ref]
    for cut in range(len(full)):
        s = ShardStream(uneven_shards, cfg, rank=1, world_size=2, seed=5)
        s.load_state_dict({**s.state_dict(), "epoch": 1, "batch": cut})
        assert [b.keys for b in s] == full[cut:]


def test_state_geometry_mismatch_is_refused(uneven_shards):
    a = ShardStream(uneven_shards, DataConfig(batch_size=2, num_workers=0), world_size=1)
    b = ShardStream(uneven_shards, DataConfig(batch_size=4, num_workers=0), world_size=1)
    with pytest.raises(ValueError, match="batch_size=2 vs 4"):
        b.load_state_dict(a.state_dict())


def test_eval_stream_sees_every_sample_once(uneven_shards):
    cfg = DataConfig(batch_size=4, num_workers=0)
    keys = [k for r in range(2) for b in ShardStream(uneven_shards, cfg, r, 2, train=False) for k in b.keys]
    assert sorted(keys) == [f"s{i:04d}" for i in range(34)]


def test_padding_and_mask(uneven_shards):
    batch = next(iter(ShardStream(uneven_shards, DataConfig(batch_size=5, num_workers=0), train=False)))
    lengths = batch.mask.sum(1)
    assert batch.features["a"].shape[:2] == batch.mask.shape and batch.mask.shape[1] == lengths.max()
    assert lengths.min() < lengths.max(), "toy lengths vary; the batch should need padding"
    assert batch.labels.shape == (5, 3) and torch.equal(batch.labels.sum(1), torch.ones(5))
