"""Modality label refinement by cross-video swap: hand-computed cases and a toy teacher."""
import pytest
import torch

from avvp_dist.data.batch import Batch
from avvp_dist.kernels import PseudoMasks
from avvp_dist.method.config import MethodConfig
from avvp_dist.method.objective import modality_labels, step_losses
from avvp_dist.method.refine import partner_index, refine_labels, refine_masks
from avvp_dist.model.output import ModelOutput


def swapped_features(x: dict[str, torch.Tensor], modalities: dict[str, str], keep: str,
                     partner: torch.Tensor) -> dict[str, torch.Tensor]:
    """The swap as a plain reference: each video's `keep` ("audio" or "visual") features with
    its partner's other modality. x: {name: (B, T, D)}; modalities: {name: modality}; partner: (B,)."""
    return {k: (v if modalities[k] == keep else v[partner]) for k, v in x.items()}


def test_partner_shares_fewest_labels_ties_to_the_next_video():
    y = torch.tensor([[1, 0, 1], [1, 0, 0], [0, 1, 0], [1, 1, 0]], dtype=torch.float32)
    # labels shared: 0-1: 1, 0-2: 0, 0-3: 1, 1-2: 0, 1-3: 1, 2-3: 1
    # 0 -> 2 and 1 -> 2 (the only ones sharing none); 2 shares none with 0 and 1: the nearest
    # following is 0 (2 steps on, against 3 for video 1); 3 shares one with every video: 0 is next
    assert partner_index(y).tolist() == [2, 2, 0, 0]
    assert partner_index(y[:1]) is None


def test_refine_labels_by_hand():
    y = torch.tensor([[1, 1, 0], [0, 1, 1]], dtype=torch.float32)
    partner = torch.tensor([1, 0])
    p_own = torch.tensor([[[0.9, 0.8, 0.1], [0.6, 0.5, 0.1]],
                          [[0.1, 0.7, 0.9], [0.1, 0.9, 0.8]]])  # (B, 2, C) audio, visual
    p_swap = torch.tensor([[[0.9, 0.1, 0.1], [0.1, 0.1, 0.0]],
                           [[0.0, 0.1, 0.8], [0.0, 0.1, 0.2]]])
    got = refine_labels(y, partner, p_own, p_swap, (0.0, 0.3))
    # video 0: class 0 testable (partner lacks it), visual 0.1 < 0.3 * 0.6 -> dropped from visual;
    #          class 1 shared with the partner -> kept although 0.1 < 0.3 * 0.5
    # video 1: class 2 testable, visual 0.2 < 0.3 * 0.8 = 0.24 -> dropped; audio never refined (ratio 0)
    want = torch.tensor([[[1, 1, 0], [0, 1, 0]], [[0, 1, 1], [0, 1, 0]]], dtype=torch.float32)
    assert torch.equal(got, want)
    got = refine_labels(y, partner, p_own, p_swap, (0.2, 0.0))
    # audio: video 0 class 0: 0.9 >= 0.18 kept; video 1 class 2: 0.8 >= 0.18 kept; visual untouched
    assert torch.equal(got, torch.stack([y, y], dim=1))


def test_refine_masks_drop_a_modality_of_a_class():
    B, T, C = 1, 4, 2
    y = torch.tensor([[1.0, 1.0]])
    pos = torch.zeros(B, T, 2, C, dtype=torch.bool)
    pos[0, 1:3, :, 0] = True  # class 0 positive at t = 1, 2 in both modalities
    pos[0, 0, :, 1] = True
    rel = pos.clone()
    rel[0, 3, :, 0] = True  # a reliable negative
    masks = PseudoMasks(pos, rel, pos[:, :, 0] & pos[:, :, 1])
    valid = torch.tensor([[True, True, True, False]])
    y_mod = torch.tensor([[[1.0, 1.0], [0.0, 1.0]]])  # class 0 dropped from the visual modality
    got = refine_masks(masks, y, y_mod, valid)
    want_pos = pos.clone()
    want_pos[0, :, 1, 0] = False
    want_rel = rel.clone()
    want_rel[0, :3, 1, 0] = True  # every valid visual segment of class 0 is a negative
    assert torch.equal(got.pos, want_pos) and torch.equal(got.reliable, want_rel)
    assert torch.equal(got.pairs, want_pos[:, :, 0] & want_pos[:, :, 1])
    assert not got.pairs[0, :, 0].any() and got.pairs[0, 0, 1]


class LeakyTeacher(torch.nn.Module):
    """p_m(c) = mean_t of (own track + other track / 2) / 1.5 at feature c: each modality's
    prediction also sees the other modality, as a cross-attending model does. Its projected
    inputs are the features themselves, and it has the swapped pass of `AVVPModel`."""

    modalities = {"vggish": "audio", "res152": "visual"}

    @staticmethod
    def _mean(z, valid):
        w = valid[:, :, None].float()
        return (z * w).sum(1) / w.sum(1)

    def forward(self, x, valid):
        a, v = x["vggish"], x["res152"]
        P = torch.stack([(a + 0.5 * v) / 1.5, (v + 0.5 * a) / 1.5], dim=2)
        p_a, p_v = self._mean(P[:, :, 0], valid), self._mean(P[:, :, 1], valid)
        return ModelOutput(P=P, p=(p_a + p_v) / 2, p_a=p_a, p_v=p_v, z_a=a, z_v=v)

    def swapped_modality_level(self, z_a, z_v, valid, modality):
        own, other = (z_a, z_v) if modality == 0 else (z_v, z_a)
        return self._mean((own + 0.5 * other) / 1.5, valid)


class FixedStudent(torch.nn.Module):
    """Returns the same outputs whatever the input."""

    def __init__(self, out: ModelOutput):
        super().__init__()
        self.out = out

    def forward(self, x, valid):
        return self.out


def test_modality_labels_drop_a_class_absent_from_the_visual_track():
    # video 0: class 0 in audio only, class 1 in both; video 1: class 2 in both
    T, C = 4, 3
    a, v = torch.zeros(2, T, C), torch.zeros(2, T, C)
    a[0, :, 0] = 1
    a[0, :, 1] = v[0, :, 1] = 1
    a[1, :, 2] = v[1, :, 2] = 1
    y = torch.tensor([[1, 1, 0], [0, 0, 1]], dtype=torch.float32)
    x, valid = {"vggish": a, "res152": v}, torch.ones(2, T, dtype=torch.bool)
    modalities = {"vggish": "audio", "res152": "visual"}
    assert torch.equal(swapped_features(x, modalities, "visual", torch.tensor([1, 0]))["vggish"], a[[1, 0]])
    cfg = MethodConfig()
    cfg.refine.enabled, cfg.refine.ratio_visual = True, 0.3
    teacher = LeakyTeacher()
    got = modality_labels(teacher, teacher(x, valid), valid, y, cfg)
    # video 0 class 0: own p_v = 0.5 / 1.5, swapped (video 1's audio) p_v = 0 -> dropped;
    # class 1: own 1, swapped 1 / 1.5 -> kept; video 1 class 2: own 1, swapped 1 / 1.5 -> kept
    want = torch.tensor([[[1, 1, 0], [0, 1, 0]], [[0, 0, 1], [0, 0, 1]]], dtype=torch.float32)
    assert torch.equal(got, want)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_swapped_pass_equals_the_whole_swapped_forward(num_layers):
    """The refinement's swapped pass (projections reused, only the kept modality's last layer
    and head) gives what the whole forward on the swapped features gives."""
    from avvp_dist.model.config import ModelConfig
    from avvp_dist.model.model import AVVPModel

    torch.manual_seed(0)
    features = [{"name": "vggish", "modality": "audio", "dim": 12},
                {"name": "res152", "modality": "visual", "dim": 20}, {"name": "r2plus1d", "modality": "visual", "dim": 9}]
    model = AVVPModel(features, 7, ModelConfig(d_model=16, num_layers=num_layers, num_heads=2, ffn_dim=24,
                                               dropout=0.1, embed_dim=0)).eval()
    B, T = 5, 10
    x = {f["name"]: torch.randn(B, T, f["dim"]) for f in features}
    valid = torch.ones(B, T, dtype=torch.bool)
    valid[1, 7:] = valid[3, 4:] = False  # padded videos: the swap runs where both are valid
    y = (torch.rand(B, 7) < 0.3).float()
    partner = partner_index(y)
    both = valid & valid[partner]
    with torch.no_grad():
        out = model(x, valid)
        swapped = ((out.z_a, out.z_v[partner]), (out.z_a[partner], out.z_v))
        for m, keep in enumerate(("audio", "visual")):
            whole = model(swapped_features(x, model.modalities, keep, partner), both).modality_level()[:, m]
            fast = model.swapped_modality_level(*swapped[m], both, m)
            assert torch.equal(fast, whole), (keep, (fast - whole).abs().max())


def test_step_losses_use_the_refined_labels():
    """The weak loss's visual term and the pseudo masks follow the refined labels."""
    from avvp_dist.method.losses import weak_loss

    T, C = 4, 3
    a, v = torch.zeros(2, T, C), torch.zeros(2, T, C)
    a[0, :, 0] = 1
    a[1, :, 2] = v[1, :, 2] = 1
    y = torch.tensor([[1, 0, 0], [0, 0, 1]], dtype=torch.float32)
    batch = Batch(["a", "b"], {"vggish": a, "res152": v}, torch.ones(2, T, dtype=torch.bool), y, [{}, {}])
    g = torch.Generator().manual_seed(0)
    P = torch.rand(2, T, 2, C, generator=g) * 0.8 + 0.1
    out = ModelOutput(P=P, p=P.mean((1, 2)), p_a=P[:, :, 0].mean(1), p_v=P[:, :, 1].mean(1))
    cfg = MethodConfig()
    cfg.refine.enabled, cfg.pseudo.enabled, cfg.cma.enabled = True, True, False
    cfg.pseudo.tau_low = 0.0
    terms = step_losses(FixedStudent(out), LeakyTeacher(), batch, cfg, step=10**6).terms
    y_v = torch.tensor([[0, 0, 0], [0, 0, 1]], dtype=torch.float32)
    want_weak = weak_loss(out.p, out.p_a, out.p_v, y, y_a=y, y_v=y_v)
    assert terms["weak"].item() == want_weak.item()
    assert terms["refined_visual"].item() == 0.5 and terms["refined_audio"].item() == 0.0
    plain = MethodConfig()
    plain.refine.enabled, plain.pseudo.enabled, plain.cma.enabled, plain.pseudo.tau_low = False, True, False, 0.0
    unrefined = step_losses(FixedStudent(out), LeakyTeacher(), batch, plain, step=10**6).terms
    assert unrefined["weak"].item() != terms["weak"].item()
    # pseudo: the visual segments of class 0 in video 0 join the reliable negatives
    assert terms["pseudo_positions"].item() == unrefined["pseudo_positions"].item() + T
