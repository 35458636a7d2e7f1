"""Host syncs on the training step: every place the step reads a tensor's value on the host
(`item`, `tolist`, `cpu`, `nonzero`, and `bool()` / `int()` / `float()` of a tensor) is
counted by call site during real training steps, and checked against the list the step is
allowed, each with its reason. On a GPU each of these stalls the host until the device has
caught up; a new one fails this test until it is removed or added here with its reason.

Per step: the trainer runs 2 and then 5 optimizer steps (same start and end, inside one
epoch; 1 rank, then 2 ranks, counted on every rank, `sync_worker.py`), and the difference of
the counts over the 3 extra steps is what the steps cost."""
from __future__ import annotations

import pytest

from dist_helpers import run_world
from train_helpers import TINY, make_shards

GATHER = "avvp_dist/distributed/collectives.py:gather_rows"
# call site (file under avvp_dist/ or deepspeed/ : function) -> (reads per step at most, why)
ALLOWED = {
    "avvp_dist/engine/stop.py:agree_step": (
        1, "the merged flag: a non-finite loss on any rank (every rank skips the step) and the stop-signal kind "
           "every rank acts on, one collective and one read per micro-step"),
    "avvp_dist/method/objective.py:_cma_terms": (
        1, "the CMA pairs (nonzero): the reliable segment-class pairs whose embeddings are computed"),
    GATHER: (
        1, "the CMA gather's padded size: the largest pair count over the ranks"),
    "avvp_dist/engine/logger.py:train_step": (
        1, "logging, on the steps that write (train.log_every; every step in this test): every term in one read"),
}
TOPK = {  # the top-k masks (method.pseudo.mode=topk) on the CPU path add these
    "avvp_dist/kernels/masks.py:topk_counts": (1, "k per video, computed on the host in float64 (DESIGN)"),
    "avvp_dist/kernels/masks.py:_pseudo_masks_torch": (1, "the labelled (video, class) columns, the only ones ranked"),
    "avvp_dist/kernels/masks.py:_topk_select": (1, "the largest k: the width of the top-k selection"),
}


def _counts(tmp_path, shards, world: int, steps: int, mode: str) -> list[dict]:
    overrides = [f"run_dir={tmp_path / f'run{world}x{steps}'}", f"data.shards={shards}", f"train.max_steps={steps}",
                 "train.threads=1", "train.checkpoint_every=0", "train.final_eval=false", "train.plots=0", *TINY,
                 "train.log_every=1", "method.ramp_start=0", "method.ramp_steps=1", "method.refine.enabled=true",
                 "method.cma.cross_video=true", f"method.pseudo.mode={mode}"]
    return run_world("sync_worker.py", world, {"overrides": overrides}, tmp_path, tag=f"w{world}s{steps}{mode}")


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("world, mode", [(1, "adaptive"), (2, "adaptive"), (1, "topk")])
def test_host_reads_per_step_are_the_allowed_ones(tmp_path, world, mode):
    shards = make_shards(tmp_path / "data")
    allowed = {**ALLOWED, **(TOPK if mode == "topk" else {})}
    # 2 and 5 steps: inside the first epoch (6 batches of 8 videos at 2 ranks), whose start reads the plan
    runs = (_counts(tmp_path, shards, world, 2, mode), _counts(tmp_path, shards, world, 5, mode))
    for short, long in zip(*runs):  # per rank
        per_step = {site: (long.get(site, 0) - short.get(site, 0)) / 3 for site in set(long) | set(short)}
        per_step = {site: n for site, n in per_step.items() if n}
        unexpected = {site: n for site, n in per_step.items() if site not in allowed or n > allowed[site][0]}
        assert not unexpected, f"host reads per step beyond the allowed ones: {unexpected}"
        # the list is not stale: every allowed read happens (CMA with the cross-video term is on),
        # the gather's only between ranks
        assert set(per_step) == set(allowed) - ({GATHER} if world == 1 else set()), per_step
