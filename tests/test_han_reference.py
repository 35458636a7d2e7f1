"""Our model with `share_layers` against a plain re-implementation of HAN's published forward
pass (Tian et al., ECCV 2020; AVVP-ECCV20's nets/net_audiovisual.py), written here: the same
weights loaded into both give the same outputs."""
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from avvp_dist.model.config import ModelConfig
from avvp_dist.model.model import AVVPModel

LLP = [{"name": "vggish", "modality": "audio", "dim": 128}, {"name": "res152", "modality": "visual", "dim": 2048},
       {"name": "r2plus1d_18", "modality": "visual", "dim": 512}]


class PlainHANLayer(nn.Module):
    """HAN's HANLayer: sequence-first attention, cross-modal plus self attention, then the FFN."""

    def __init__(self, d: int, heads: int, ffn: int):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, heads)
        self.cm_attn = nn.MultiheadAttention(d, heads)
        self.linear1, self.linear2 = nn.Linear(d, ffn), nn.Linear(ffn, d)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)

    def forward(self, src_q, src_v):
        src_q, src_v = src_q.permute(1, 0, 2), src_v.permute(1, 0, 2)
        src1 = self.cm_attn(src_q, src_v, src_v)[0]
        src2 = self.self_attn(src_q, src_q, src_q)[0]
        src_q = self.norm1(src_q + src1 + src2)
        src_q = self.norm2(src_q + self.linear2(F.relu(self.linear1(src_q))))
        return src_q.permute(1, 0, 2)


class PlainMMILNet(nn.Module):
    """HAN's MMIL_Net forward (the modules it uses): ResNet-152 frames projected, then pooled 8 -> 1."""

    def __init__(self, d: int, heads: int, ffn: int, classes: int):
        super().__init__()
        self.fc_a, self.fc_v, self.fc_st = nn.Linear(128, d), nn.Linear(2048, d), nn.Linear(512, d)
        self.fc_fusion = nn.Linear(2 * d, d)
        self.layer = PlainHANLayer(d, heads, ffn)  # HAN's Encoder with one layer, used in both directions
        self.fc_prob, self.fc_frame_att, self.fc_av_att = (nn.Linear(d, classes) for _ in range(3))

    def forward(self, audio, visual, visual_st):
        x1 = self.fc_a(audio)
        vid_s = self.fc_v(visual).permute(0, 2, 1).unsqueeze(-1)
        vid_s = F.avg_pool2d(vid_s, (8, 1)).squeeze(-1).permute(0, 2, 1)
        x2 = self.fc_fusion(torch.cat((vid_s, self.fc_st(visual_st)), dim=-1))
        x1, x2 = self.layer(x1, x2), self.layer(x2, x1)  # HAN: each direction from the layer's inputs
        x = torch.cat([x1.unsqueeze(-2), x2.unsqueeze(-2)], dim=-2)
        frame_prob = torch.sigmoid(self.fc_prob(x))
        frame_att = torch.softmax(self.fc_frame_att(x), dim=1)
        av_att = torch.softmax(self.fc_av_att(x), dim=2)
        temporal_prob = frame_att * frame_prob
        global_prob = (temporal_prob * av_att).sum(dim=2).sum(dim=1)
        return global_prob, temporal_prob[:, :, 0, :].sum(dim=1), temporal_prob[:, :, 1, :].sum(dim=1), frame_prob


def _copy_weights(ours: AVVPModel, ref: PlainMMILNet) -> None:
    """Our parameters into the plain network, module by module, by name."""
    layer, head = ours.encoder.layers[0], ours.head
    pairs = [(ours.audio_in.proj["vggish"], ref.fc_a), (ours.visual_in.proj["res152"], ref.fc_v),
             (ours.visual_in.proj["r2plus1d_18"], ref.fc_st), (ours.visual_in.fuse, ref.fc_fusion),
             (layer.self_attn, ref.layer.self_attn), (layer.cross_attn, ref.layer.cm_attn),
             (layer.ffn[0], ref.layer.linear1), (layer.ffn[3], ref.layer.linear2),
             (layer.norm1, ref.layer.norm1), (layer.norm2, ref.layer.norm2),
             (head.classifier, ref.fc_prob), (head.time_attn, ref.fc_frame_att), (head.modality_attn, ref.fc_av_att)]
    with torch.no_grad():
        for src, dst in pairs:
            state = src.state_dict()
            assert state.keys() == dst.state_dict().keys(), (src, dst)
            dst.load_state_dict(state)


@pytest.mark.parametrize("heads", [1, 4])
def test_shared_layer_model_equals_plain_han_forward(heads):
    torch.manual_seed(0)
    cfg = ModelConfig(d_model=64, num_layers=1, num_heads=heads, ffn_dim=48, dropout=0.1, embed_dim=0,
                      share_layers=True)
    ours = AVVPModel(LLP, 25, cfg).eval()
    ref = PlainMMILNet(64, heads, 48, 25).eval()
    _copy_weights(ours, ref)
    # HAN's parameters are exactly ours: nothing of our model is left out of the comparison
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())
    g = torch.Generator().manual_seed(1)
    audio, frames, st = torch.randn(3, 10, 128, generator=g), torch.randn(3, 80, 2048, generator=g), \
        torch.randn(3, 10, 512, generator=g)
    pooled = frames.reshape(3, 10, 8, 2048).mean(2)  # what the data layer stores (features.read_feature, pool 8)
    out = ours({"vggish": audio, "res152": pooled, "r2plus1d_18": st})
    p, p_a, p_v, P = ref(audio, frames, st)
    for a, b in ((out.p, p), (out.p_a, p_a), (out.p_v, p_v), (out.P, P)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_separate_layers_are_another_network():
    """Our own variant (share_layers off) has twice the encoder and is not HAN's network."""
    cfg = dict(d_model=32, num_layers=1, num_heads=1, ffn_dim=32, embed_dim=0)
    shared = AVVPModel(LLP, 25, ModelConfig(**cfg, share_layers=True))
    separate = AVVPModel(LLP, 25, ModelConfig(**cfg, share_layers=False))
    enc = sum(p.numel() for p in shared.encoder.parameters())
    assert sum(p.numel() for p in separate.encoder.parameters()) == 2 * enc
    assert sum(p.numel() for p in separate.parameters()) - sum(p.numel() for p in shared.parameters()) == enc
