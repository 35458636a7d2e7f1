"""Our `model.backbone=coleaf` against a plain re-implementation of CoLeaF's published forward
pass (Sardari et al., ECCV 2024; faeghehsardari/coleaf, nets/net_audiovisual.py, `MMIL_Net.forward`
with `with_ca=True`), written here: the same weights loaded into both give the same outputs.

The reference keeps the published order and arithmetic: sequence-first attention, each layer
used in both directions from its inputs, the pass without cross-modal attention first, the
0.8 / 0.2 mix, dropout on the visual states only, alpha and beta logits (audio's beta from
`v2a`, visual's from `a2v`), the attention reshaped to (class, logit) pairs and softmaxed over
time, Dirichlet evidence at temperature 0.8, and the video-level p from the shared classifier
branch averaged over time. Left out as the published forward never reads them: `fc_global`,
and each layer's `cls_tokens_a` / `cls_tokens_v`. The 2D visual features enter at the segment
rate (CLIP's, the paper's features), so the published 8 -> 1 frame pooling has a factor 1 here:
on HAN's ResNet-152 frames our data layer averages the frames before the projection, CoLeaF
after it (a stated deviation, docs/method.md)."""
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from avvp_dist.model.config import ModelConfig
from avvp_dist.model.model import AVVPModel

D, C, T = 32, 7, 10
VALOR = [{"name": "clap", "modality": "audio", "dim": 24}, {"name": "clip", "modality": "visual", "dim": 20},
         {"name": "r2plus1d_18", "modality": "visual", "dim": 16}]


class PlainHANLayer(nn.Module):
    """CoLeaF's HANLayer: sequence-first attention; with_ca adds the cross-modal attention."""

    def __init__(self, d: int, heads: int, ffn: int):
        super().__init__()
        self.self_attn, self.cm_attn = nn.MultiheadAttention(d, heads), nn.MultiheadAttention(d, heads)
        self.linear1, self.linear2 = nn.Linear(d, ffn), nn.Linear(ffn, d)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)

    def forward(self, src_q, src_v, with_ca):
        src_q, src_v = src_q.permute(1, 0, 2), src_v.permute(1, 0, 2)
        if with_ca:
            src1 = self.cm_attn(src_q, src_v, src_v)[0]
            src2 = self.self_attn(src_q, src_q, src_q)[0]
            src_q = self.norm1(src_q + src1 + src2)
        else:
            src_q = self.norm1(src_q + self.self_attn(src_q, src_q, src_q)[0])
        src_q = self.norm2(src_q + self.linear2(F.relu(self.linear1(src_q))))
        return src_q.permute(1, 0, 2)


class PlainCoLeaF(nn.Module):
    """CoLeaF's MMIL_Net forward (the modules it reads), at width d, C classes."""

    def __init__(self, d: int, heads: int, ffn: int, classes: int, layers: int, mix: float = 0.8,
                 swap_branches: bool = False, pool: int = 1):
        super().__init__()
        self.fc_a = nn.Sequential(nn.Linear(VALOR[0]["dim"], d), nn.ELU())
        self.fc_v = nn.Sequential(nn.Linear(VALOR[1]["dim"], d), nn.ELU())
        self.fc_st = nn.Sequential(nn.Linear(VALOR[2]["dim"], d), nn.ELU())
        self.fc_fusion = nn.Sequential(nn.Linear(2 * d, d), nn.ELU())
        self.layers = nn.ModuleList(PlainHANLayer(d, heads, ffn) for _ in range(layers))
        self.fc_prob, self.fc_prob_beta = nn.Linear(d, classes), nn.Linear(d, classes)
        self.fc_frame_att = nn.Linear(d, classes * 2)
        self.v2a = nn.Sequential(nn.Linear(d, d), nn.Dropout(0.2), nn.LeakyReLU(0.2))
        self.a2v = nn.Sequential(nn.Linear(d, d), nn.Dropout(0.2), nn.LeakyReLU(0.2))
        self.classifier1 = nn.Sequential(nn.Linear(d, d), nn.LeakyReLU(0.2))
        self.classifier2 = nn.Linear(d, classes)
        self.dropout = nn.Dropout(0.5)
        self.classes, self.mix, self.swap, self.pool = classes, mix, swap_branches, pool

    def encoder(self, src_a, src_v, with_ca):
        for layer in self.layers:
            out_a, out_v = layer(src_a, src_v, with_ca), layer(src_v, src_a, with_ca)
            src_a, src_v = out_a, out_v
        return src_a, src_v

    @staticmethod
    def evidential(x):
        alpha = torch.exp(torch.div(torch.clamp(x, -10, 10), 0.8)) + torch.ones_like(x)
        return alpha[..., 0] / torch.sum(alpha, dim=-1)

    def forward(self, audio, visual, visual_st):
        x1 = self.fc_a(audio)
        vid_s = self.fc_v(visual).permute(0, 2, 1).unsqueeze(-1)
        vid_s = F.avg_pool2d(vid_s, (self.pool, 1)).squeeze(-1).permute(0, 2, 1)
        x2 = self.fc_fusion(torch.cat((vid_s, self.fc_st(visual_st)), dim=-1))
        global_prob = torch.sigmoid(self.classifier2(self.classifier1(x1) + self.classifier1(x2))).mean(dim=1)
        x1_woca, x2_woca = self.encoder(x1, x2, with_ca=False)
        x1_ca, x2_ca = self.encoder(x1, x2, with_ca=True)
        x1 = x1_ca * self.mix + x1_woca * (1 - self.mix)
        x2 = x2_ca * self.mix + x2_woca * (1 - self.mix)
        x2 = self.dropout(x2)
        x = torch.cat([x1.unsqueeze(-2), x2.unsqueeze(-2)], dim=-2)
        b, t, m, _ = x.shape
        frame_alpha_logit = self.fc_prob(x)
        x_a, x_v = x[:, :, 0], x[:, :, 1]
        to_a, to_v = (self.a2v, self.v2a) if self.swap else (self.v2a, self.a2v)
        frame_beta_logit = torch.stack((self.fc_prob_beta(x_a + to_a(x_a + x_v)),
                                        self.fc_prob_beta(x_v + to_v(x_a + x_v))), dim=2)
        frame_logit = torch.stack((frame_alpha_logit, frame_beta_logit), dim=-1)
        frame_att = torch.softmax(self.fc_frame_att(x).reshape(b, t, m, self.classes, 2), dim=1)
        temporal_logit = frame_att * frame_logit
        a_prob = self.evidential(temporal_logit[:, :, 0, :, :].sum(dim=1))
        v_prob = self.evidential(temporal_logit[:, :, 1, :, :].sum(dim=1))
        return global_prob, a_prob, v_prob, self.evidential(frame_logit)


def _copy(dst: nn.Module, src: nn.Module) -> None:
    dst.load_state_dict(src.state_dict())


def _copy_weights(ours: AVVPModel, ref: PlainCoLeaF) -> None:
    _copy(ref.fc_a[0], ours.audio_in.proj["clap"])
    _copy(ref.fc_v[0], ours.visual_in.proj["clip"])
    _copy(ref.fc_st[0], ours.visual_in.proj["r2plus1d_18"])
    _copy(ref.fc_fusion[0], ours.visual_in.fuse)
    for plain, layer in zip(ref.layers, ours.encoder.han.layers):
        _copy(plain.self_attn, layer.self_attn)
        _copy(plain.cm_attn, layer.cross_attn)
        _copy(plain.linear1, layer.ffn[0])
        _copy(plain.linear2, layer.ffn[3])
        _copy(plain.norm1, layer.norm1)
        _copy(plain.norm2, layer.norm2)
    head = ours.head
    for name, mine in (("fc_prob", head.alpha), ("fc_prob_beta", head.beta), ("fc_frame_att", head.frame_att),
                       ("classifier2", head.classifier2)):
        _copy(getattr(ref, name), mine)
    for name in ("v2a", "a2v", "classifier1"):
        _copy(getattr(ref, name)[0], getattr(head, name)[0])


def _pair(heads: int = 1, layers: int = 1, **variant):
    torch.manual_seed(0)
    ours = AVVPModel(VALOR, C, ModelConfig(backbone="coleaf", d_model=D, num_layers=layers, num_heads=heads,
                                           ffn_dim=48, embed_dim=0, share_layers=True)).eval()
    ref = PlainCoLeaF(D, heads, 48, C, layers, **variant).eval()
    _copy_weights(ours, ref)
    g = torch.Generator().manual_seed(1)
    x = {f["name"]: torch.randn(3, T, f["dim"], generator=g) for f in VALOR}
    return ours, ref, x


@pytest.mark.parametrize("heads, layers", [(1, 1), (4, 1), (2, 2)])
def test_same_weights_give_coleafs_outputs(heads, layers):
    ours, ref, x = _pair(heads, layers)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())
    with torch.no_grad():
        out = ours(x, torch.ones(3, T, dtype=torch.bool))
        p, p_a, p_v, P = ref(x["clap"], x["clip"], x["r2plus1d_18"])
    for name, mine, theirs in (("p", out.p, p), ("p_a", out.p_a, p_a), ("p_v", out.p_v, p_v), ("P", out.P, P)):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-5, msg=name)


@pytest.mark.parametrize("variant", [{"mix": 0.7}, {"swap_branches": True}])
def test_the_comparison_sees_the_mix_and_the_branch_order(variant):
    """The test above fails for a model whose mixing ratio or v2a / a2v order differs from CoLeaF's."""
    ours, ref, x = _pair(**variant)
    with torch.no_grad():
        out = ours(x, torch.ones(3, T, dtype=torch.bool))
        p, p_a, p_v, P = ref(x["clap"], x["clip"], x["r2plus1d_18"])
    assert (out.P - P).abs().max() > 1e-3 and (out.p_v - p_v).abs().max() > 1e-4


def test_padding_leaves_the_real_segments_as_alone():
    """Ours for variable-length videos: a video padded from 6 to 10 segments gives the outputs it
    gives alone (the masked attention, pooling softmax and time average)."""
    ours, _, x = _pair(heads=2)
    mask = torch.ones(3, T, dtype=torch.bool)
    mask[1, 6:] = False
    with torch.no_grad():
        padded = ours(x, mask)
        alone = ours({k: v[1:2, :6] for k, v in x.items()}, torch.ones(1, 6, dtype=torch.bool))
    for name in ("p", "p_a", "p_v"):
        torch.testing.assert_close(getattr(padded, name)[1:2], getattr(alone, name), rtol=0, atol=1e-5, msg=name)
    torch.testing.assert_close(padded.P[1:2, :6], alone.P, rtol=0, atol=1e-5)
