"""The method across real gloo ranks: gathered gradients, zero-pair ranks, and 2 ranks x B
under DeepSpeed equal to 1 process x 2B (normalisation contract, DESIGN.md)."""

import numpy as np
import pytest
import torch

from avvp_dist.method.losses import agreement_sum, infonce_sum
from dist_helpers import run_world

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]


def _reference(pairs, anchors=None):
    """Single process: loss over all pairs (or only the anchors given), its gradients."""
    g = torch.Generator().manual_seed(0)
    total = sum(pairs)
    e_a = torch.nn.functional.normalize(torch.randn(total, 6, generator=g), dim=1).requires_grad_()
    e_v = torch.nn.functional.normalize(torch.randn(total, 6, generator=g), dim=1).requires_grad_()
    cls = torch.randint(0, 3, (total,), generator=g)
    idx = torch.arange(total) if anchors is None else anchors
    loss = (infonce_sum(e_a[idx], e_v[idx], cls[idx], e_a, e_v, cls, torch.ones(total, dtype=torch.bool),
                        int(idx[0]) if len(idx) else 0, 0.1) + agreement_sum(e_a[idx], e_v[idx])) / total
    loss.backward()
    return loss.item(), e_a.grad.numpy(), e_v.grad.numpy()


@pytest.mark.parametrize("pairs", [[4, 7], [0, 5]], ids=["uneven", "rank0-has-none"])
def test_cross_video_gradient_reaches_the_other_rank(tmp_path, pairs):
    outs = run_world("method_worker.py", 2, {"mode": "cma_grad", "pairs": pairs}, tmp_path, timeout=120)
    loss, ga, gv = _reference(pairs)
    assert np.mean([o["loss"] for o in outs]) == pytest.approx(loss, rel=1e-6)
    got_a = np.concatenate([np.array(o["grad_a"]).reshape(-1, 6) for o in outs]) / 2  # DeepSpeed averages ranks
    got_v = np.concatenate([np.array(o["grad_v"]).reshape(-1, 6) for o in outs]) / 2
    np.testing.assert_allclose(got_a, ga, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got_v, gv, rtol=1e-5, atol=1e-7)
    if pairs[0]:
        # without the path through the gather, rank 0 would get only its own anchors' gradient
        _, own_a, _ = _reference(pairs, anchors=torch.arange(pairs[0]))
        assert np.abs(own_a[: pairs[0]] - ga[: pairs[0]]).max() > 1e-4


@pytest.mark.parametrize("stage, empty", [(0, False), (2, False), (0, True)],
                         ids=["zero0", "zero2", "zero0-rank0-without-pairs"])
def test_two_ranks_equal_one_process_under_deepspeed(tmp_path, stage, empty):
    base = {"mode": "equivalence", "seed": 3, "videos": 8, "stage": stage, "unlabelled_first_half": empty}
    (one,) = run_world("method_worker.py", 1, base, tmp_path, "one")
    two = run_world("method_worker.py", 2, base, tmp_path, "two")
    # the teacher masks first: same positives, the same CMA pairs
    n = base["videos"] // 2
    pos2 = [[b + r * n, *rest] for r, o in enumerate(two) for b, *rest in o["pos"]]
    assert sorted(pos2) == sorted(one["pos"]) and len(one["pos"]) > 0
    assert sum(o["pairs"] for o in two) == one["pairs"] > 0
    assert (two[0]["pairs"] == 0) == empty
    assert one["terms"]["pseudo"] > 0 and one["terms"]["cma_nce"] > 0
    assert two[0]["loss"] == pytest.approx(one["loss"], rel=1e-5, abs=1e-7)
    for name, g1 in one["grads"].items():
        g1 = np.array(g1)
        for o in two:
            g2 = np.array(o["grads"][name])
            assert np.linalg.norm(g2 - g1) <= 1e-5 * np.linalg.norm(g1) + 1e-7, name
