"""HAN / MMIL model: shapes, padding invariance, pooling, layer chaining, checkpoints."""
import pytest
import torch

from avvp_dist.model.checkpoint import load_model, save_model
from avvp_dist.model.config import ModelConfig
from avvp_dist.model.model import AVVPModel

LLP = [{"name": "vggish", "modality": "audio", "dim": 128}, {"name": "res152", "modality": "visual", "dim": 2048},
       {"name": "r2plus1d_18", "modality": "visual", "dim": 512}]
UNAV = [{"name": "vggish", "modality": "audio", "dim": 128}, {"name": "rgb", "modality": "visual", "dim": 1024},
        {"name": "flow", "modality": "visual", "dim": 1024}]
SMALL = ModelConfig(d_model=32, num_heads=2, ffn_dim=48, dropout=0.0, embed_dim=8, num_layers=2)


def _inputs(features, B, T, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {f["name"]: torch.randn(B, T, f["dim"], generator=g) for f in features}


@pytest.mark.parametrize("features, C, T", [(LLP, 25, 10), (UNAV, 100, 57)])
def test_output_shapes_and_ranges(features, C, T):
    model = AVVPModel(features, C, SMALL)
    out = model(_inputs(features, 3, T), torch.ones(3, T, dtype=torch.bool))
    assert out.P.shape == (3, T, 2, C) and out.h_a.shape == out.h_v.shape == (3, T, 32)
    for k in ("p", "p_a", "p_v"):
        assert getattr(out, k).shape == (3, C) and (getattr(out, k) >= 0).all() and (getattr(out, k) <= 1).all()


@pytest.mark.parametrize("train", [False, True])
def test_padding_does_not_change_outputs(train):
    torch.manual_seed(0)
    model = AVVPModel(UNAV, 100, SMALL).train(train)
    x = _inputs(UNAV, 2, 20)
    lengths = torch.tensor([20, 13])
    mask = torch.arange(20)[None] < lengths[:, None]
    padded = {k: torch.cat([v, 100 * torch.randn(2, 9, v.shape[-1])], 1) for k, v in x.items()}
    pmask = torch.cat([mask, torch.zeros(2, 9, dtype=torch.bool)], 1)
    a, b = model(x, mask), model(padded, pmask)
    for k in ("p", "p_a", "p_v"):
        torch.testing.assert_close(getattr(a, k), getattr(b, k), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a.P[1, :13], b.P[1, :13], rtol=1e-5, atol=1e-6)
    # and video 1 alone, unpadded, agrees with its padded version
    alone = model({k: v[1:, :13] for k, v in x.items()}, None)
    torch.testing.assert_close(alone.p[0], a.p[1], rtol=1e-5, atol=1e-6)


def test_mmil_pooling_matches_the_formula():
    """p = sum_t sum_m softmax_t(time logits) * P * softmax_m(modality logits), by hand."""
    torch.manual_seed(1)
    model = AVVPModel(LLP, 25, SMALL).eval()
    x, mask = _inputs(LLP, 2, 10), torch.ones(2, 10, dtype=torch.bool)
    out = model(x, mask)
    h = torch.stack([out.h_a, out.h_v], 2)
    head = model.head
    P = torch.sigmoid(head.classifier(h))
    tw = torch.exp(head.time_attn(h)) / torch.exp(head.time_attn(h)).sum(1, keepdim=True)
    mw = torch.exp(head.modality_attn(h)) / torch.exp(head.modality_attn(h)).sum(2, keepdim=True)
    torch.testing.assert_close(out.p, (tw * P * mw).sum((1, 2)))
    torch.testing.assert_close(out.p_a, (tw * P)[:, :, 0].sum(1))
    torch.testing.assert_close(out.P, P)


def test_each_layer_is_fed_the_previous_output():
    torch.manual_seed(2)
    model = AVVPModel(LLP, 25, SMALL).eval()
    x = _inputs(LLP, 2, 10)
    a0, v0 = model.audio_in(x), model.visual_in(x)
    la, lv = model.encoder.audio_layers, model.encoder.visual_layers
    a1, v1 = la[0](a0, v0, None), lv[0](v0, a0, None)
    a2, v2 = la[1](a1, v1, None), lv[1](v1, a1, None)
    out = model(x, None)
    torch.testing.assert_close(out.h_a, a2)
    torch.testing.assert_close(out.h_v, v2)


def test_model_checkpoint_roundtrip_weights_only(tmp_path):
    model = AVVPModel(LLP, 25, SMALL).eval()
    classes = [f"c{i}" for i in range(25)]
    save_model(model, tmp_path / "m.pt", classes, "llp", extra={"step": 7})
    blob = torch.load(tmp_path / "m.pt", weights_only=True)  # no pickled objects inside
    assert blob["classes"] == classes and blob["features"] == LLP and blob["extra"] == {"step": 7}
    loaded, meta = load_model(tmp_path / "m.pt")
    x = _inputs(LLP, 2, 10)
    torch.testing.assert_close(loaded(x).P, model(x).P, rtol=0, atol=0)
    assert meta["model_config"]["d_model"] == 32 and meta["dataset"] == "llp"
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(Exception):
        load_model(tmp_path / "bad.pt")


def test_config_errors():
    with pytest.raises(ValueError, match="not divisible"):
        ModelConfig(d_model=30, num_heads=4)
    with pytest.raises(ValueError, match="at least one audio and one visual"):
        AVVPModel(LLP[1:], 25, SMALL)


def test_standardize_is_the_plain_model_on_standardised_inputs_and_survives_a_checkpoint(tmp_path):
    g = torch.Generator().manual_seed(4)
    stats = {f["name"]: {"mean": (torch.rand(f["dim"], generator=g) * 50).tolist(),
                         "std": (torch.rand(f["dim"], generator=g) * 9 + 1).tolist()} for f in LLP}
    torch.manual_seed(5)
    std_model = AVVPModel(LLP, 25, ModelConfig(d_model=32, num_heads=2, ffn_dim=32, embed_dim=8, standardize=True))
    std_model.set_feature_stats(stats)
    torch.manual_seed(5)
    plain = AVVPModel(LLP, 25, ModelConfig(d_model=32, num_heads=2, ffn_dim=32, embed_dim=8)).eval()
    std_model.eval()
    x = {k: v * 20 + 30 for k, v in _inputs(LLP, 2, 10).items()}
    by_hand = {k: (v - torch.tensor(stats[k]["mean"])) / torch.tensor(stats[k]["std"]) for k, v in x.items()}
    torch.testing.assert_close(std_model(x).P, plain(by_hand).P, rtol=1e-5, atol=1e-6)
    save_model(std_model, tmp_path / "m.pt", [f"c{i}" for i in range(25)], "llp")
    loaded, _ = load_model(tmp_path / "m.pt")
    torch.testing.assert_close(loaded(x).P, std_model(x).P, rtol=0, atol=0)
    with pytest.raises(ValueError, match="no statistics for feature 'vggish'"):
        std_model.set_feature_stats({k: v for k, v in stats.items() if k != "vggish"})
