"""Flags that change behaviour without a test of their own elsewhere: each one is shown to act."""
import json

import numpy as np
import pytest
import torch

from avvp_dist.config import ConfigError
from avvp_dist.config.train import TrainConfig
from avvp_dist.data.config import DataConfig
from avvp_dist.data.features import FeatureError, FeatureSpec, read_video_features
from avvp_dist.data.stream import ShardStream
from avvp_dist.engine.ds_config import deepspeed_config
from avvp_dist.kernels import PseudoMasks
from avvp_dist.method.config import MethodConfig
from avvp_dist.method.objective import method_losses
from avvp_dist.model.heads import ClassAwareEmbedding
from avvp_dist.model.output import ModelOutput
from conftest import synth_and_shard


def test_deepspeed_json_overrides_the_generated_config(tmp_path):
    path = tmp_path / "ds.json"
    path.write_text(json.dumps({"zero_optimization": {"reduce_bucket_size": 1000}, "steps_per_print": 7}))
    cfg = deepspeed_config(TrainConfig(zero_stage=2, deepspeed_json=str(path)), 4, 2, "fp32")
    assert cfg["zero_optimization"] == {"stage": 2, "reduce_bucket_size": 1000}  # merged, not replaced
    assert cfg["steps_per_print"] == 7 and cfg["train_batch_size"] == 8
    assert deepspeed_config(TrainConfig(zero_stage=2), 4, 2, "fp32")["zero_optimization"] == {"stage": 2}
    with pytest.raises(ConfigError, match="train.deepspeed_json: .*missing.json does not exist"):
        deepspeed_config(TrainConfig(deepspeed_json=str(tmp_path / "missing.json")), 4, 1, "fp32")
    path.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="holds a list, not a JSON object"):
        deepspeed_config(TrainConfig(deepspeed_json=str(path)), 4, 1, "fp32")


@pytest.mark.timeout(120)
def test_shard_dtype_float32_keeps_the_raw_values(tmp_path):
    shards = synth_and_shard(tmp_path, train=12, val=4, test=4, extra=("data.shard_dtype=float32",))
    manifest = json.loads((shards / "train" / "manifest.json").read_text())
    assert manifest["dtype"] == "float32"
    batch = next(iter(ShardStream(shards / "train", DataConfig(batch_size=4, num_workers=0), train=False)))
    vid = batch.keys[0]
    raw = np.load(tmp_path / "raw" / "features" / "vggish" / f"{vid[:11]}.npy")
    t = int(batch.mask[0].sum())
    assert np.array_equal(batch.features["vggish"][0, :t].numpy(), raw)  # float16 would round them
    assert not np.array_equal(raw.astype(np.float16).astype(np.float32), raw)


def test_id_chars_names_the_feature_file(tmp_path):
    spec = FeatureSpec("a", "audio", 3, steps=2)
    (tmp_path / "a").mkdir()
    np.save(tmp_path / "a" / "abcde.npy", np.ones((2, 3), np.float32))
    got = read_video_features("abcdefghij_0_10", [spec], tmp_path, id_chars=5)
    assert got["a"].shape == (2, 3)
    with pytest.raises(FeatureError, match="abcdefghij_.npy"):
        read_video_features("abcdefghij_0_10", [spec], tmp_path, id_chars=11)


def _cma_terms(agreement: bool, cross_video: bool) -> dict:
    torch.manual_seed(0)
    B, T, C, D = 2, 3, 4, 8
    P = torch.rand(B, T, 2, C)
    out = ModelOutput(P=P, p=P.mean((1, 2)), p_a=P[:, :, 0].mean(1), p_v=P[:, :, 1].mean(1),
                      h_a=torch.randn(B, T, D), h_v=torch.randn(B, T, D))
    pairs = torch.zeros(B, T, C, dtype=torch.bool)
    pairs[0, :2, 0] = pairs[1, 1:, 2] = True
    zeros = torch.zeros(B, T, 2, C, dtype=torch.bool)
    masks = PseudoMasks(pos=zeros, reliable=zeros, pairs=pairs)
    cfg = MethodConfig()
    cfg.pseudo.enabled, cfg.cma.agreement, cfg.cma.cross_video = False, agreement, cross_video
    torch.manual_seed(1)
    embed = ClassAwareEmbedding(D, 6, C)
    return method_losses(out, (P.mean(1).amax(1) > 0).float(), torch.ones(B, T, dtype=torch.bool), masks, embed,
                         cfg, ramp=1.0).terms


def test_cma_agreement_switch_removes_its_term():
    both, agree, nce = _cma_terms(True, True), _cma_terms(True, False), _cma_terms(False, True)
    assert "cma_agreement" not in nce and "cma_nce" not in agree
    assert agree["cma"] == agree["cma_agreement"] > 0 and nce["cma"] == 0.5 * nce["cma_nce"]  # nce_weight 0.5
    torch.testing.assert_close(both["cma"], agree["cma"] + nce["cma"])
