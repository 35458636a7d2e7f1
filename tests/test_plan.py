"""Epoch plans: exact epochs, equal batch counts per rank, bounded and counted drops."""
import itertools

import numpy as np
import pytest

from avvp_dist.data.plan import consumed_per_slot, plan_epoch


def _rank_batches(plan, rank, workers):
    """Each rank's batches as lists of (shard, index), in DataLoader round-robin order."""
    per_slot = []
    for slot in plan.slots[rank]:
        samples = [(r.shard, i) for r in slot.runs for i in range(r.start, r.stop)]
        bounds = np.cumsum((0,) + slot.batch_sizes)
        per_slot.append([samples[a:b] for a, b in zip(bounds[:-1], bounds[1:])])
    out = []
    for i in itertools.count():
        got = [s[i] for s in per_slot if i < len(s)]
        if not got:
            return out
        out += got


@pytest.mark.parametrize("counts, world, batch, workers", [
    ([10, 5, 7, 3, 9], 2, 2, 2),
    ([10, 5, 7, 3, 9], 2, 3, 2),
    ([1, 1, 1, 40], 3, 4, 3),
    ([17], 2, 4, 0),
    ([5, 5, 5, 5, 5, 5, 5], 4, 1, 2),
])
def test_exact_epoch(counts, world, batch, workers):
    n = sum(counts)
    for epoch in range(3):
        plan = plan_epoch(counts, world, batch, workers, piece_size=4, seed=7, epoch=epoch)
        batches = [_rank_batches(plan, r, workers) for r in range(world)]
        assert len({len(b) for b in batches}) == 1, "every rank must yield the same number of batches"
        assert all(len(x) == batch for b in batches for x in b)
        delivered = [s for b in batches for x in b for s in x]
        assert len(delivered) == len(set(delivered)), "a sample delivered twice in one epoch"
        assert plan.dropped == n - len(delivered) < world * batch
        assert plan.dropped == n % (world * batch)
        assert all(0 <= i < counts[s] for s, i in delivered)


def test_assignment_changes_with_epoch_and_seed():
    counts = [10, 5, 7, 3, 9]

    def rank0(seed, epoch):
        return _rank_batches(plan_epoch(counts, 2, 2, 2, 4, seed, epoch), 0, 2)

    assert rank0(0, 0) == rank0(0, 0)
    assert rank0(0, 0) != rank0(0, 1)
    assert rank0(0, 0) != rank0(1, 0)


def test_dropped_samples_differ_between_epochs():
    counts = [10, 5, 7, 3, 9]
    everything = {(s, i) for s, c in enumerate(counts) for i in range(c)}
    dropped = []
    for epoch in range(6):
        plan = plan_epoch(counts, 2, 4, 2, 4, 0, epoch)
        seen = {x for r in range(2) for b in _rank_batches(plan, r, 2) for x in b}
        dropped.append(frozenset(everything - seen))
    assert len(set(dropped)) > 1, "the same samples are dropped every epoch"


def test_eval_plan_covers_everything_in_order_once():
    counts = [10, 5, 7, 3, 9]
    plan = plan_epoch(counts, 2, 4, 2, 4, 0, 0, train=False)
    seen = sorted(x for r in range(2) for b in _rank_batches(plan, r, 2) for x in b)
    assert seen == sorted((s, i) for s, c in enumerate(counts) for i in range(c)) and plan.dropped == 0
    assert [plan.batches(r) for r in range(2)] == [5, 5]


def test_too_small_dataset_is_a_clear_error():
    with pytest.raises(ValueError, match="fewer than one global batch"):
        plan_epoch([3], 2, 2, 1, 4, 0, 0)


def test_consumed_per_slot_matches_round_robin():
    for done in range(12):
        for k in (1, 2, 3):
            expected = [sum(1 for j in range(done) if j % k == s) for s in range(k)]
            assert consumed_per_slot(done, k) == expected


def _skewed_counts():
    """The benchmark's shard sizes (benchmarks/plan.py): 10,000 shards, mostly full, a lognormal tail."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "plan.py"
    spec = importlib.util.spec_from_file_location("plan_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.skewed_counts(10_000)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("world", [1, 8, 64, 512])
def test_plan_at_scale(world):
    """10,000 skewed shards, `world` ranks x 4 workers, batch 16, pieces of 32 (the defaults):
    every rank the same number of full batches, no sample twice, fewer than one global batch
    (world x 16) dropped, and every sample of the epoch either delivered or counted as dropped."""
    counts, batch, workers = _skewed_counts(), 16, 4
    offsets = np.concatenate([[0], np.cumsum(counts)])
    plan = plan_epoch(counts, world, batch, workers, piece_size=32, seed=3, epoch=1)
    ids, per_rank = [], []
    for rank in range(world):
        n = 0
        for slot in plan.slots[rank]:
            assert all(b == batch for b in slot.batch_sizes)
            n += len(slot.batch_sizes)
            ids += [np.arange(offsets[r.shard] + r.start, offsets[r.shard] + r.stop) for r in slot.runs]
        per_rank.append(n)
    ids = np.concatenate(ids)
    assert len(set(per_rank)) == 1 and per_rank[0] == sum(counts) // (world * batch)
    assert len(np.unique(ids)) == len(ids), "a sample delivered twice in one epoch"
    assert plan.dropped == sum(counts) - len(ids) and 0 <= plan.dropped < world * batch
