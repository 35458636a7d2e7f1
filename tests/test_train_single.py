"""The method end to end in one process on synthetic shards: the total loss goes down."""
import pytest
import torch

from avvp_dist.data.config import DataConfig
from avvp_dist.data.stream import ShardStream
from avvp_dist.method.config import MethodConfig
from avvp_dist.method.ema import EMATeacher, flatten_parameters_
from avvp_dist.method.objective import step_losses
from avvp_dist.model.config import ModelConfig
from avvp_dist.model.model import AVVPModel
from conftest import synth_and_shard


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_method_loss_goes_down(tmp_path):
    synth_and_shard(tmp_path, train=96, val=4, test=4, per_shard=32)
    stream = ShardStream(tmp_path / "shards" / "train", DataConfig(batch_size=16, num_workers=0), seed=0)
    features = stream.manifest.features
    torch.manual_seed(0)
    model = AVVPModel(features, len(stream.manifest.classes), ModelConfig(d_model=32, ffn_dim=32, embed_dim=16))
    flatten_parameters_(model)
    teacher = EMATeacher(model, decay=0.9, ema="flat")
    cfg = MethodConfig(ramp_start=0, ramp_steps=0)
    cfg.cma.enabled = True
    cfg.pseudo.mode = "topk"
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses, step = [], 0
    while step < 48:
        for batch in stream:
            result = step_losses(model, teacher.module, batch, cfg, step)
            terms = result.terms
            opt.zero_grad()
            result.loss.backward()
            opt.step()
            teacher.update(model)
            losses.append(result.loss.item())
            assert terms["cma_pairs"] > 0 and terms["pseudo_positions"] > 0 and "refined_visual" in terms
            step += 1
    first, last = sum(losses[:8]) / 8, sum(losses[-8:]) / 8
    assert last < 0.8 * first, (first, last)
    assert len(teacher._pairs) == 1  # the flat student is updated in one pass
