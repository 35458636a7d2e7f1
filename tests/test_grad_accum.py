"""Gradient accumulation: train.grad_accum=2 at batch 8 is batch 16, for the weak loss.

The weak loss is a mean over the micro-batch and DeepSpeed divides each micro-step's loss by
`gradient_accumulation_steps`, so two halves give the weak loss and the gradients of the
whole batch. (The pseudo and CMA terms are normalised by their position counts per
micro-step, so they are not compared here: docs/method.md says so.)"""
import deepspeed
import pytest
import torch

from avvp_dist.data.config import DataConfig
from avvp_dist.data.stream import ShardStream
from avvp_dist.config.train import TrainConfig
from avvp_dist.engine.ds_config import deepspeed_config
from avvp_dist.engine.build import make_optimizer
from avvp_dist.method.config import MethodConfig
from avvp_dist.method.objective import step_losses
from avvp_dist.model.config import ModelConfig
from avvp_dist.model.model import AVVPModel
from conftest import synth_and_shard
from ds_helpers import lone_group

TOLERANCE = dict(rtol=1e-5, atol=1e-7)  # fp32: the two halves sum in another order than the whole


@pytest.mark.timeout(120)
def test_two_micro_batches_of_8_give_the_weak_loss_and_gradients_of_16(tmp_path):
    # UnAV-100 format: variable lengths, so the halves are padded to other lengths than the whole
    shards = synth_and_shard(tmp_path, "unav100", train=32, val=4, test=4, per_shard=8)
    def stream(batch: int) -> ShardStream:
        return ShardStream(shards / "train", DataConfig(dataset="unav100", batch_size=batch, num_workers=0), train=False)

    whole, halves = next(iter(stream(16))), list(stream(8))[:2]
    assert halves[0].keys + halves[1].keys == whole.keys
    assert {h.mask.shape[1] for h in halves} != {whole.mask.shape[1]}  # padded differently
    with lone_group():
        results = _train_parts(whole, halves, stream(16).manifest)
    (loss_16, grads_16), (loss_8x2, grads_8x2) = results[1], results[2]
    torch.testing.assert_close(loss_8x2, loss_16, **TOLERANCE)
    assert grads_16.keys() == grads_8x2.keys() and any(g.abs().sum() > 0 for g in grads_16.values())
    for name in grads_16:
        torch.testing.assert_close(grads_8x2[name], grads_16[name], **TOLERANCE, msg=name)


def _train_parts(whole, halves: list, manifest) -> dict:
    """{grad_accum: (mean weak loss, gradients after the micro-steps)} from the same initial model."""
    method = MethodConfig()
    method.teacher.enabled = method.pseudo.enabled = method.cma.enabled = method.refine.enabled = False
    results = {}
    for accum, parts in ((1, [whole]), (2, halves)):
        torch.manual_seed(0)
        model = AVVPModel(manifest.features, len(manifest.classes), ModelConfig(d_model=16, ffn_dim=16, embed_dim=0,
                                                                              dropout=0.0))
        engine, *_ = deepspeed.initialize(model=model, optimizer=make_optimizer(model.parameters(), "adamw", 1e-3, 0.0),
                                          config=deepspeed_config(TrainConfig(grad_accum=accum), len(parts[0]),
                                                                  1, "fp32"))
        weak = []
        for part in parts:
            result = step_losses(engine, None, part, method, step=0)
            engine.backward(result.loss)
            weak.append(result.terms["weak"])
        results[accum] = (torch.stack(weak).mean(), {n: p.grad.clone() for n, p in engine.module.named_parameters()})
    return results
