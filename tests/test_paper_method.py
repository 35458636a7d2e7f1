"""The seed paper's parts as `preset=paper` runs them, against plain computations written here:
masks from the averaged teacher probabilities, a BCE over the selected positions only, the CMA
cosine distance (both embedding readings), CoLeaF's weak-loss weights."""
import torch
import torch.nn.functional as F

from avvp_dist.config import load_config
from avvp_dist.method.losses import weak_loss
from avvp_dist.method.objective import method_losses, teacher_masks
from avvp_dist.model.output import ModelOutput

B, T, C, D = 3, 6, 5, 8


def _paper_method(**cma):
    cfg = load_config(None, ["preset=paper"]).method
    for k, v in cma.items():
        setattr(cfg.cma, k, v)
    return cfg


def _case(seed=0):
    g = torch.Generator().manual_seed(seed)
    P = torch.rand(B, T, 2, C, generator=g) * 0.9 + 0.05
    y = (torch.rand(B, C, generator=g) < 0.5).float()
    y[:, 0] = 1
    valid = torch.ones(B, T, dtype=torch.bool)
    valid[1, 4:] = False
    return P, y, valid


def test_masks_come_from_the_averaged_probabilities():
    P, y, valid = _case()
    masks = teacher_masks(P, y, valid, _paper_method())
    both = P.mean(2)  # (B, T, C)
    w = valid[:, :, None].float()
    tau = (both * w).sum(1, keepdim=True) / w.sum(1, keepdim=True)  # gamma 1, no floor
    want = (both >= tau) & valid[:, :, None] & y.bool()[:, None, :]
    assert torch.equal(masks.pos[:, :, 0], want) and torch.equal(masks.pos[:, :, 1], want)
    assert torch.equal(masks.reliable, masks.pos)  # the selected positions only: no negatives
    tau_m = (P * w[..., None]).sum(1, keepdim=True) / w.sum(1, keepdim=True)[..., None]
    own = (P >= tau_m) & valid[:, :, None, None] & y.bool()[:, None, None, :]
    assert torch.equal(masks.pairs, own[:, :, 0] & own[:, :, 1])  # each modality past its own threshold
    assert want.any() and not torch.equal(masks.pairs, want)


def _out(P, seed=1):
    g = torch.Generator().manual_seed(seed)
    return ModelOutput(P=P, p=P.mean((1, 2)), p_a=P[:, :, 0].mean(1), p_v=P[:, :, 1].mean(1),
                       h_a=torch.randn(B, T, D, generator=g), h_v=torch.randn(B, T, D, generator=g))


def test_the_masked_bce_is_a_mean_over_the_selected_positions():
    P, y, valid = _case()
    cfg = _paper_method(enabled=False)
    masks = teacher_masks(P, y, valid, cfg)
    student = torch.rand(B, T, 2, C, generator=torch.Generator().manual_seed(2)) * 0.9 + 0.05
    terms = method_losses(_out(student), y, valid, masks, None, cfg, ramp=1.0).terms
    want = -torch.log(student[masks.pos]).mean()  # target 1 at every selected position, nothing else
    torch.testing.assert_close(terms["pseudo"], want)
    assert terms["pseudo_positions"] == masks.pos.sum()


def test_cma_is_the_mean_cosine_distance_over_the_pairs():
    P, y, valid = _case()
    cfg = _paper_method(embedding="segment")
    cfg.pseudo.enabled = False
    masks = teacher_masks(P, y, valid, cfg)
    out = _out(P)
    terms = method_losses(out, y, valid, masks, None, cfg, ramp=1.0).terms
    b, t, _ = masks.pairs.nonzero(as_tuple=True)
    want = (1 - F.cosine_similarity(out.h_a[b, t], out.h_v[b, t], dim=-1)).mean()
    torch.testing.assert_close(terms["cma"], want)
    assert "cma_nce" not in terms and terms["cma_pairs"] == len(b)


def test_class_aware_cma_reads_the_embedding_head():
    from avvp_dist.model.heads import ClassAwareEmbedding

    P, y, valid = _case()
    cfg = _paper_method()
    cfg.pseudo.enabled = False
    masks = teacher_masks(P, y, valid, cfg)
    out, embed = _out(P), ClassAwareEmbedding(D, 4, C)
    terms = method_losses(out, y, valid, masks, embed, cfg, ramp=1.0).terms
    b, t, c = masks.pairs.nonzero(as_tuple=True)
    e_a, e_v = embed(out.h_a[b, t], out.h_v[b, t], c)
    torch.testing.assert_close(terms["cma"], (1 - (e_a * e_v).sum(-1)).mean())


def test_coleafs_weak_loss_weights():
    g = torch.Generator().manual_seed(3)
    p, p_a, p_v = (torch.rand(B, C, generator=g) * 0.9 + 0.05 for _ in range(3))
    y = (torch.rand(B, C, generator=g) < 0.5).float()
    bce = F.binary_cross_entropy
    want = 2 * bce(p, y) + 2 * bce(p_a, y) + bce(p_v, 0.9 * y + 0.05)
    torch.testing.assert_close(weak_loss(p, p_a, p_v, y, 1.0, 0.9, weights=(2.0, 2.0, 1.0)), want)
    torch.testing.assert_close(weak_loss(p, p_a, p_v, y, 1.0, 0.9), bce(p, y) + bce(p_a, y) + bce(p_v, 0.9 * y + 0.05))
