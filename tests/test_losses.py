"""Loss terms against hand computations and plain loops."""
import math

import pytest
import torch

from avvp_dist.method.losses import agreement_sum, infonce_sum, pseudo_loss_sum, weak_loss


def test_weak_loss_by_hand():
    p, p_a, p_v = torch.tensor([[0.8, 0.1]]), torch.tensor([[0.7, 0.2]]), torch.tensor([[0.6, 0.3]])
    y = torch.tensor([[1.0, 0.0]])
    bce = lambda q, t: -(t * math.log(q) + (1 - t) * math.log(1 - q))  # noqa: E731
    want = (bce(0.8, 1) + bce(0.1, 0)) / 2 + (bce(0.7, 1) + bce(0.2, 0)) / 2 + (bce(0.6, 0.95) + bce(0.3, 0.05)) / 2
    assert weak_loss(p, p_a, p_v, y).item() == pytest.approx(want, rel=1e-6)


def test_pseudo_loss_sums_reliable_positions_only():
    g = torch.Generator().manual_seed(0)
    P = torch.rand(2, 4, 2, 3, generator=g)
    pos = torch.rand(2, 4, 2, 3, generator=g) < 0.3
    rel = pos | (torch.rand(2, 4, 2, 3, generator=g) < 0.5)
    want = sum(-(math.log(P[i].item()) if pos[i] else math.log(1 - P[i].item()))
               for i in map(tuple, rel.nonzero().tolist()))
    assert pseudo_loss_sum(P, pos, rel).item() == pytest.approx(want, rel=1e-5)


def test_infonce_matches_a_plain_loop():
    g = torch.Generator().manual_seed(1)
    n_all, tau = 9, 0.2
    A = torch.nn.functional.normalize(torch.randn(n_all, 4, generator=g), dim=1)
    V = torch.nn.functional.normalize(torch.randn(n_all, 4, generator=g), dim=1)
    cls = torch.tensor([0, 1, 0, 2, 1, 0, 2, 2, 1])
    valid = torch.ones(n_all, dtype=torch.bool)
    valid[8] = False  # a padding row: never a negative
    lo, hi = 2, 6  # local anchors
    got = infonce_sum(A[lo:hi], V[lo:hi], cls[lo:hi], A, V, cls, valid, lo, tau).item()
    want = 0.0
    for i in range(lo, hi):
        for anchor, keys in ((A, V), (V, A)):
            pos = math.exp((anchor[i] @ keys[i]).item() / tau)
            negs = sum(math.exp((anchor[i] @ keys[j]).item() / tau) for j in range(n_all)
                       if valid[j] and cls[j] != cls[i])
            want += 0.5 * -math.log(pos / (pos + negs))
    assert got == pytest.approx(want, rel=1e-5)


def test_agreement_by_hand():
    e_a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    e_v = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert agreement_sum(e_a, e_v).item() == pytest.approx(1.0)
    assert agreement_sum(e_a[:0], e_v[:0]).item() == 0.0


def test_weak_loss_with_per_modality_labels_by_hand():
    p, p_a, p_v = torch.tensor([[0.8, 0.1]]), torch.tensor([[0.7, 0.2]]), torch.tensor([[0.6, 0.3]])
    y, y_v = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 0.0]])  # class 0 dropped from the visual labels
    bce = lambda q, t: -(t * math.log(q) + (1 - t) * math.log(1 - q))  # noqa: E731
    want = (bce(0.8, 1) + bce(0.1, 0)) / 2 + (bce(0.7, 1) + bce(0.2, 0)) / 2 + (bce(0.6, 0.05) + bce(0.3, 0.05)) / 2
    assert weak_loss(p, p_a, p_v, y, y_a=y, y_v=y_v).item() == pytest.approx(want, rel=1e-6)


def test_weak_loss_floor_and_prior_by_hand():
    from avvp_dist.method.losses import weak_references

    y = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    floor, prior = weak_references(y, audio_smoothing=1.0, visual_smoothing=0.9)
    h = lambda q: -(q * math.log(q) + (1 - q) * math.log(1 - q))  # noqa: E731
    assert floor.item() == pytest.approx(h(0.95), rel=1e-5)  # only the smoothed visual targets have entropy
    # base rates: class 0 always present (p = 1 -> clamped, ~0 loss), class 1 half the time (H(0.5) per entry)
    want_hard = (0 + h(0.5)) / 2
    want_visual = (h(0.95) + h(0.5)) / 2  # class 0 targets 0.95 twice (mean 0.95); class 1 targets 0.05, 0.95
    assert prior.item() == pytest.approx(2 * want_hard + want_visual, rel=1e-4)
    assert weak_loss(y, y, 0.9 * y + 0.05, y).item() == pytest.approx(floor.item(), abs=1e-5)  # perfect predictions
