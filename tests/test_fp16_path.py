"""The fp16 path as far as a CPU runs it. DeepSpeed refuses fp16 on a CPU (its loss scaler and
fp16 optimizer need a GPU: `precision fp16 needs a GPU`), so the GPU check's fp16 stage is the
first full run; here: (1) the model and the whole objective in fp16, as DeepSpeed's fp16 engine
runs them (a half module, half inputs), against fp32, including saturated probabilities whose
log terms underflow first in fp16; (2) the trainer's handling of a step DeepSpeed's loss scaler
skips (`was_step_applied` False): neither the step count nor the EMA advance, and the run still
takes its full number of applied steps (tests/overflow_train.py)."""
import copy
import json
import os

import pytest
import torch

from avvp_dist.data.batch import Batch
from avvp_dist.engine.ds_config import deepspeed_config, resolve_precision
from avvp_dist.config.train import TrainConfig
from avvp_dist.method.config import MethodConfig
from avvp_dist.method.ema import EMATeacher
from avvp_dist.method.objective import step_losses
from avvp_dist.model.config import ModelConfig
from avvp_dist.model.model import AVVPModel
from conftest import synth_and_shard
from train_helpers import losses, run, train_cmd

FEATURES = [{"name": "a", "modality": "audio", "dim": 16}, {"name": "v", "modality": "visual", "dim": 24}]


def _batch() -> Batch:
    g = torch.Generator().manual_seed(0)
    return Batch([f"v{i}" for i in range(4)], {f["name"]: torch.randn(4, 10, f["dim"], generator=g) for f in FEATURES},
                 torch.ones(4, 10, dtype=torch.bool), (torch.rand(4, 5, generator=g) < 0.5).float(), [{}] * 4)


def test_fp16_is_refused_on_a_cpu_and_configures_loss_scaling():
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="fp16 needs a GPU"):
            resolve_precision("fp16")
    cfg = deepspeed_config(TrainConfig(), 8, 2, "fp16")
    assert cfg["fp16"]["enabled"] and cfg["fp16"]["loss_scale"] == 0  # dynamic loss scaling
    assert "torch_autocast" not in cfg and "bf16" not in cfg


@pytest.mark.parametrize("backbone", ["han", "coleaf"])
@pytest.mark.parametrize("saturate", [1.0, 40.0])
def test_the_full_objective_in_fp16_matches_fp32(backbone, saturate):
    torch.manual_seed(0)
    extra = {"visual_dropout": 0.0} if backbone == "coleaf" else {}
    model = AVVPModel(FEATURES, 5, ModelConfig(backbone=backbone, d_model=32, ffn_dim=32, embed_dim=16, dropout=0.0,
                                               **extra))
    with torch.no_grad():  # large logits: probabilities at 0 and 1 in fp16
        for p in model.parameters():
            p.mul_(saturate ** (1 / 4) if p.dim() > 1 else 1.0)
    teacher = EMATeacher(model, 0.99, warmup=False)
    cfg = MethodConfig()
    cfg.ramp_start = cfg.ramp_steps = 0
    cfg.cma.enabled, cfg.refine.enabled = True, backbone == "han"
    full = step_losses(model, teacher.module, _batch(), cfg, step=5)
    half = copy.deepcopy(model).half()
    low = step_losses(half, teacher.module, _batch().to(torch.device("cpu"), torch.float16), cfg, step=5)
    assert torch.isfinite(low.loss), low.terms
    assert float(low.loss.detach()) == pytest.approx(float(full.loss.detach()), rel=2e-2, abs=2e-2)
    for count in ("pseudo_positions", "cma_pairs"):
        assert abs(float(low.terms[count]) - float(full.terms[count])) <= 0.05 * float(full.terms[count]) + 1, count
    low.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in half.parameters() if p.grad is not None)


@pytest.mark.timeout(180)
def test_a_step_the_loss_scaler_skips_is_not_counted(tmp_path):
    shards = synth_and_shard(tmp_path / "data")
    counts = tmp_path / "counts.json"
    env = dict(os.environ, AVVP_TEST_OVERFLOW_AT="3,4", AVVP_TEST_OVERFLOW_OUT=str(counts))
    out = run(train_cmd(None, tmp_path / "run", shards, "train.max_steps=6", "train.plots=0", "train.final_eval=false",
                        "data.num_workers=0", script=os.path.join(os.path.dirname(__file__), "overflow_train.py")),
              env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    c = json.loads(counts.read_text())
    assert c == {"boundaries": 8, "step": 6, "micro_step": 8, "ema_updates": 6}
    assert sorted(losses(tmp_path / "run")) == list(range(1, 7))
