"""A recipe trains the same at any world size: the same global batch, the same epochs, the same
lr at every epoch boundary (config/scale.py, engine/build.scaled); and a recipe keeps the preset's
optimizer and schedule (`preset=han` with recipes/configs/llp.yaml is HAN's StepLR, exactly)."""
import json
from pathlib import Path

import pytest
import torch

from avvp_dist.config import ConfigError, load_config
from avvp_dist.config.presets import HAN_OPTIMIZER
from avvp_dist.config.scale import ScaleError, batch_plan
from avvp_dist.engine.build import scaled
from avvp_dist.engine.schedule import lr_lambda
from conftest import synth_and_shard
from train_helpers import run, train_cmd

REPO = Path(__file__).resolve().parents[1]
LLP = str(REPO / "recipes" / "configs" / "llp.yaml")


@pytest.mark.parametrize("global_batch, cap, world, micro, accum", [
    (16, 16, 1, 16, 1), (16, 16, 2, 8, 1), (16, 16, 4, 4, 1),  # the share of each rank fits
    (16, 4, 1, 4, 4), (16, 4, 2, 4, 2), (12, 5, 1, 4, 3),  # it does not: accumulate (a divisor of the share)
    (7, 3, 1, 1, 7)])  # a prime share above the cap: one video per micro-step
def test_the_batch_plan_by_hand(global_batch, cap, world, micro, accum):
    plan = batch_plan(global_batch, cap, 1, world)
    assert (plan.micro_batch, plan.grad_accum, plan.global_batch) == (micro, accum, global_batch)
    assert plan.world * plan.micro_batch * plan.grad_accum == global_batch and not plan.explicit_per_rank


def test_a_global_batch_that_does_not_divide_names_both_numbers():
    with pytest.raises(ScaleError, match="train.global_batch 16 does not divide among 3 ranks"):
        batch_plan(16, 16, 1, 3)


def test_an_explicit_per_rank_batch_grows_with_the_world_and_says_so():
    plan = batch_plan(0, 8, 2, 4)
    assert (plan.micro_batch, plan.grad_accum, plan.global_batch, plan.explicit_per_rank) == (8, 2, 64, True)
    assert "per-rank batch set explicitly" in plan.describe()
    with pytest.raises(ConfigError, match="train.grad_accum: 2 with train.global_batch 16"):
        load_config(LLP, ["train.grad_accum=2"])


def test_the_command_line_length_replaces_the_file_s_and_one_source_may_not_set_both(tmp_path):
    steps = load_config(LLP, ["train.max_steps=50"])
    assert steps.train.epochs == 0 and steps.train.max_steps == 50
    assert load_config(LLP, ["train.epochs=3"]).train.epochs == 3
    both = tmp_path / "both.yaml"
    both.write_text("train:\n  epochs: 2\n  max_steps: 10\n")
    with pytest.raises(ConfigError, match="both set by"):
        load_config(both)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return synth_and_shard(tmp_path_factory.mktemp("scale"), train=96, val=8, test=8, per_shard=9)


def test_the_same_recipe_at_1_2_and_4_ranks(shards):
    """llp.yaml under preset han (global batch 16, 30 epochs of the 96 videos): the same global
    batch, epochs and steps at every world size, the lr at every epoch boundary equal, and the
    whole schedule torch's StepLR(10 epochs, 0.1) as HAN steps it."""
    seen = {}
    for world in (1, 2, 4):
        asked = load_config(LLP, ["preset=han", f"data.shards={shards}", "train.epochs=30"])
        cfg, plan, stream, per_epoch = scaled(asked, shards, 0, world)
        multiplier, _ = lr_lambda(cfg.train, per_epoch)
        seen[world] = {"global": plan.global_batch, "per_epoch": per_epoch, "steps": cfg.train.max_steps,
                       "epochs": cfg.train.max_steps / per_epoch,
                       "lr_at_epochs": [multiplier(e * per_epoch) for e in range(31)]}
        assert plan.micro_batch == 16 // world and cfg.data.batch_size == 16 // world
        assert len(stream) == per_epoch * plan.grad_accum  # this rank's batches in an epoch
    assert seen[1] == seen[2] == seen[4]
    assert seen[1]["global"] == 16 and seen[1]["per_epoch"] == 96 // 16 and seen[1]["epochs"] == 30
    # HAN's optimizer and schedule, exactly: the recipe file changes none of the preset's values
    assert {k: getattr(cfg.train, k) for k in HAN_OPTIMIZER} == HAN_OPTIMIZER
    assert not [k for k in asked.preset_overrides if k.startswith(("model.", "method."))]
    assert {k for k in asked.preset_overrides} == {"train.epochs", "train.global_batch", "train.eval_every",
                                                   "train.checkpoint_every"}
    opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=HAN_OPTIMIZER["lr"])
    step_lr = torch.optim.lr_scheduler.StepLR(opt, step_size=10 * seen[1]["per_epoch"], gamma=0.1)
    reference = []
    for _ in range(seen[1]["steps"]):
        reference.append(opt.param_groups[0]["lr"])
        opt.step()
        step_lr.step()
    multiplier, _ = lr_lambda(cfg.train, seen[1]["per_epoch"])
    assert [HAN_OPTIMIZER["lr"] * multiplier(s) for s in range(seen[1]["steps"])] == pytest.approx(reference, rel=1e-12)


@pytest.mark.timeout(240)
def test_one_rank_and_two_train_the_same_global_batch_and_epochs(shards, tmp_path):
    """Real runs of one recipe: run.json states the same global batch, epochs and steps, one rank
    accumulating what two take side by side; the logged lr agrees at every step."""
    records, lrs = {}, {}
    for world in (1, 2):
        run_dir = tmp_path / f"w{world}"
        out = run(train_cmd(world, run_dir, shards, "train.global_batch=8", "train.epochs=2", "train.plots=0",
                            "train.final_eval=false", "data.num_workers=0"))
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        records[world] = json.loads((run_dir / "run.json").read_text())["scale"]
        assert "global batch 8 = " in out.stdout and f"{world} rank(s)" in out.stdout
        lrs[world] = [r["lr"] for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
                      if r["kind"] == "train"]
    assert records[1]["grad_accum"] == 2 and records[2]["grad_accum"] == 1
    for key in ("global_batch", "per_rank_batch", "steps_per_epoch", "steps", "epochs"):
        assert records[1][key] == records[2][key], key
    assert records[1]["steps"] == 2 * 96 // 8 and records[1]["epochs"] == 2
    assert lrs[1] == lrs[2] and len(lrs[1]) == records[1]["steps"]
