"""What DeepSpeed does to the parameters, and what the engine does about it: at ZeRO 0 the
student is one flat buffer again after `deepspeed.initialize` (one EMA launch per step), and
at every stage the module's weights after a step are the ones the optimizer computed (a
plain PyTorch step on a copy of the model is the reference)."""
import copy

import deepspeed
import pytest
import torch

from avvp_dist.config.train import TrainConfig
from avvp_dist.data.batch import Batch
from avvp_dist.engine.ds_config import deepspeed_config
from avvp_dist.engine.build import flat_student, make_optimizer
from avvp_dist.method.config import MethodConfig
from avvp_dist.method.ema import EMATeacher, contiguous_runs, flatten_parameters_
from avvp_dist.method.objective import step_losses
from avvp_dist.model.config import ModelConfig
from avvp_dist.model.model import AVVPModel
from ds_helpers import lone_group

FEATURES = [{"name": "a", "modality": "audio", "dim": 6}, {"name": "v", "modality": "visual", "dim": 5}]
WEAK = MethodConfig()
WEAK.teacher.enabled = WEAK.pseudo.enabled = WEAK.cma.enabled = WEAK.refine.enabled = False


def _batch() -> Batch:
    g = torch.Generator().manual_seed(0)
    return Batch([f"v{i}" for i in range(4)], {f["name"]: torch.randn(4, 7, f["dim"], generator=g) for f in FEATURES},
                 torch.ones(4, 7, dtype=torch.bool), (torch.rand(4, 3, generator=g) < 0.5).float(), [{}] * 4)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("stage", [0, 1, 2])
def test_after_a_step_the_module_holds_what_the_optimizer_computed(stage):
    torch.manual_seed(0)
    model = AVVPModel(FEATURES, 3, ModelConfig(d_model=8, ffn_dim=8, embed_dim=0, dropout=0.0))
    flatten_parameters_(model)
    reference = copy.deepcopy(model)
    ref_opt = torch.optim.AdamW(reference.parameters(), lr=1e-2, weight_decay=1e-4)
    with lone_group():
        optimizer = make_optimizer(model.parameters(), "adamw", 1e-2, 1e-4)
        engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer,
                                          config=deepspeed_config(TrainConfig(zero_stage=stage), 4, 1, "fp32"))
        if stage == 0:  # what moving each parameter to a GPU does: every one in its own storage
            for p in engine.module.parameters():
                p.data = p.data.clone()
            assert len(contiguous_runs(list(engine.module.parameters()))) > 1
        runs = flat_student(engine, stage)
        if stage == 0:
            assert runs == 1
            teacher = EMATeacher(engine.module, ema="flat")
            teacher.update(engine.module)
            assert len(teacher._pairs) == 1  # one EMA launch per step
        before = {n: p.detach().clone() for n, p in engine.module.named_parameters()}
        # one step: on a second, the attention's key bias (zero gradient up to rounding) would
        # take an lr-sized Adam step from rounding noise that differs between the two runs
        engine.backward(step_losses(engine, None, _batch(), WEAK, step=0).loss)
        engine.step()
        loss = step_losses(reference, None, _batch(), WEAK, step=0).loss
        ref_opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(reference.parameters(), 1.0)  # train.grad_clip
        ref_opt.step()
        after = dict(engine.module.named_parameters())
    expected = dict(reference.named_parameters())
    assert any(not torch.equal(before[n], after[n]) for n in after), "the step changed nothing"
    for n, p in after.items():
        torch.testing.assert_close(p.detach(), expected[n].detach(), rtol=1e-5, atol=1e-6, msg=n)


def test_bf16_at_zero0_is_autocast_over_fp32_weights():
    """bf16 at ZeRO 0: torch's autocast around the forward, fp32 weights, the client's AdamW
    stepping them itself; DeepSpeed's "bf16" there would wrap it in FP16_UnfusedOptimizer,
    whose overflow check costs a host sync per parameter. ZeRO 1/2 keep DeepSpeed's bf16."""
    assert deepspeed_config(TrainConfig(zero_stage=2), 4, 1, "bf16")["bf16"] == {"enabled": True}
    cfg = deepspeed_config(TrainConfig(zero_stage=0), 4, 1, "bf16")
    assert "bf16" not in cfg and cfg["torch_autocast"] == {"enabled": True, "dtype": "bfloat16"}
    torch.manual_seed(0)
    model = AVVPModel(FEATURES, 3, ModelConfig(d_model=8, ffn_dim=8, embed_dim=4, dropout=0.0))
    with lone_group():
        optimizer = make_optimizer(model.parameters(), "adamw", 1e-2, 0.0)
        engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer, config=cfg)
        assert type(engine.optimizer) is torch.optim.AdamW
        seen = []
        engine.module.head.classifier.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
        before = engine.module.head.classifier.weight.detach().clone()
        engine.backward(step_losses(engine, None, _batch(), WEAK, step=0).loss)
        engine.step()
    assert seen == [torch.bfloat16] and all(p.dtype == torch.float32 for p in engine.module.parameters())
    assert not torch.equal(before, engine.module.head.classifier.weight)


def test_collectives_use_the_group_device(monkeypatch):
    """Under NCCL the byte gather's tensors are on the current CUDA device, under gloo on the
    CPU (NCCL takes no CPU tensors; on one GPU the collectives are skipped, so only 2+ fail)."""
    import torch.distributed as dist

    from avvp_dist.distributed import collectives

    monkeypatch.setattr(collectives, "is_distributed", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 3)
    for backend, device in (("nccl", torch.device("cuda", 3)), ("gloo", torch.device("cpu")),
                            ("cpu:gloo,cuda:nccl", torch.device("cuda", 3))):
        monkeypatch.setattr(dist, "get_backend", lambda group=None, b=backend: b)
        assert collectives.collective_device() == device, backend

    class Stop(Exception):
        pass

    seen = []

    def all_reduce(t, op=None):
        seen.append(t.device)
        raise Stop

    monkeypatch.setattr(collectives, "collective_device", lambda: torch.device("meta"))
    monkeypatch.setattr(dist, "get_world_size", lambda group=None: 2)
    monkeypatch.setattr(dist, "get_rank", lambda group=None: 0)
    monkeypatch.setattr(dist, "all_reduce", all_reduce)
    with pytest.raises(Stop):
        collectives.all_gather_bytes(b"abc")
    assert seen == [torch.device("meta")]  # the sizes go through the group's device, not the CPU
