"""From a `RunConfig` to a run ready to train: process group, data stream, DeepSpeed engine, EMA teacher, state.

`build_run(cfg)` does it in the order that makes runs reproducible (seed, then the stream,
then the model's initial weights) and checks what it can before anything is written: every
rank sees the run folder and the shards, the shards hold what the method reads, and a
checkpoint to resume from fits this run.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import deepspeed
import torch

from avvp_dist.config import RunConfig
from avvp_dist.config.scale import BatchPlan, batch_plan, run_length
from avvp_dist.data.location import Location, folder, is_url, shard_root
from avvp_dist.data.shards import Manifest, ShardError
from avvp_dist.data.stream import ShardStream, label_pair
from avvp_dist.distributed.env import DistEnv, discover, threads_per_rank
from avvp_dist.distributed.group import init_distributed
from avvp_dist.engine import checkpoint as ckpt
from avvp_dist.engine.ds_config import deepspeed_config, resolve_precision
from avvp_dist.engine.placement import check_visible, this_rank
from avvp_dist.engine.schedule import lr_lambda
from avvp_dist.engine.state import TrainState
from avvp_dist.method.ema import EMATeacher, contiguous_runs, flatten_parameters_
from avvp_dist.model.model import AVVPModel


@dataclass
class Run:
    """Everything a training run holds once built.

    cfg: the config resolved for this world size (`data.batch_size` the micro-batch per rank,
    `train.grad_accum` and `train.max_steps` as they follow from the global batch and the
    epochs, config/scale.py); asked: the config as loaded; plan: the batch of one step;
    record: what a checkpoint of this run must fit (model config, features, classes, dataset,
    world size); resume: the checkpoint to resume from, checked against it, or None;
    lr_step_every: the step schedule's interval in optimizer steps (None for cosine).
    """

    cfg: RunConfig
    asked: RunConfig
    plan: BatchPlan
    steps_per_epoch: int
    env: DistEnv
    threads: int
    run_dir: Path
    shards: Location
    ranks: list[dict]  # where each rank runs (engine.placement.this_rank)
    precision: str
    stream: ShardStream
    engine: deepspeed.DeepSpeedEngine
    scheduler: torch.optim.lr_scheduler.LRScheduler
    teacher: EMATeacher | None
    state: TrainState
    record: dict
    resume: Path | None
    num_parameters: int
    lr_step_every: int | None

    @property
    def rank(self) -> int:
        return self.env.rank

    @property
    def world(self) -> int:
        return self.env.world_size

    @property
    def manifest(self) -> Manifest:
        return self.stream.manifest

    @property
    def samples_per_step(self) -> int:
        """Videos per optimizer step over every rank: the global batch."""
        return self.plan.global_batch

    def scale(self) -> dict:
        """The batch and the length as they follow from the world size (run.json's `scale`)."""
        p, t = self.plan, self.cfg.train
        return {"global_batch": p.global_batch, "per_rank_batch": p.micro_batch, "grad_accum": p.grad_accum,
                "world_size": p.world, "explicit_per_rank": p.explicit_per_rank,
                "steps_per_epoch": self.steps_per_epoch, "steps": t.max_steps,
                "epochs": round(t.max_steps / self.steps_per_epoch, 3), "epochs_asked": self.asked.train.epochs or None}


def set_threads(requested: int) -> int:
    """Sets torch's threads for this rank (`threads_per_rank`) and returns the number."""
    n = threads_per_rank(requested)
    torch.set_num_threads(n)
    return n


def make_optimizer(params, kind: str, lr: float, weight_decay: float, beta1: float = 0.9) -> torch.optim.Optimizer:
    """torch's fused AdamW or Adam (`train.optimizer`; one kernel over all tensors: about 3x
    faster than the per-tensor loop on CPU, benchmarks/RESULTS.md), or the foreach form
    where fused is unsupported."""
    params = list(params)
    cls = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
    try:
        return cls(params, lr=lr, betas=(beta1, 0.999), weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return cls(params, lr=lr, betas=(beta1, 0.999), weight_decay=weight_decay, foreach=True)


def flat_student(engine, zero_stage: int) -> int:
    """At ZeRO 0, makes the engine's parameters one flat buffer again if `deepspeed.initialize`
    undid it (moving each parameter to the GPU, or casting it, allocates it anew), so the flat
    EMA is one launch per step; returns the number of contiguous runs. Under ZeRO 1/2 the
    parameters already are views into DeepSpeed's flat groups and are left as they are.
    The parameter objects stay the same (only their storage moves), so the optimizer still
    updates the module's weights."""
    params = list(engine.module.parameters())
    if zero_stage == 0 and len(contiguous_runs(params)) > 1:
        flatten_parameters_(engine.module)
    return len(contiguous_runs(list(engine.module.parameters())))


def _check_shards(cfg: RunConfig, shards: Location, manifest: Manifest) -> None:
    """The validation and test splits are there before training starts (not at the first
    validation), and the training shards hold the external labels the method reads."""
    for split in ("val", "test"):
        split_manifest = Manifest.load(folder(shards, split))
        if not is_url(shards):
            split_manifest.verify(folder(shards, split))
    if cfg.method.needs_external and label_pair(manifest) is None:
        raise ShardError(f"method.pseudo.source={cfg.method.pseudo.source} trains with external segment labels, "
                         f"but {folder(shards, 'train')} holds none: write the shards with "
                         "data.external_labels=true (and the labels under the raw folder, docs/data.md)")


def _model(cfg: RunConfig, manifest: Manifest, shards: Location) -> AVVPModel:
    """The student with its initial weights (from the global RNG, seeded before)."""
    model = AVVPModel(manifest.features, len(manifest.classes), cfg.model)
    if cfg.model.standardize:
        if not manifest.stats:
            raise ShardError(f"{folder(shards, 'train')}: its manifest has no feature statistics, which "
                             "model.standardize needs; write the shards again with this version")
        model.set_feature_stats(manifest.stats)
    if cfg.method.teacher.ema == "flat":  # the flat EMA then updates it in one pass (ZeRO 0)
        flatten_parameters_(model)
    return model


def _engine(cfg: RunConfig, model: AVVPModel, steps_per_epoch: int, world: int, precision: str):
    """(DeepSpeed engine, lr scheduler, the step decay's interval) around `model`."""
    t = cfg.train
    optimizer = make_optimizer(model.parameters(), t.optimizer, t.lr, t.weight_decay, t.adam_beta1)
    multiplier, lr_step_every = lr_lambda(t, steps_per_epoch)  # the step schedule counts epochs in optimizer steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier)
    ds = deepspeed_config(t, cfg.data.batch_size, world, precision)
    # on a GPU, DeepSpeed takes the device bound at start (`distributed.device`): left to itself it
    # would pick cuda:LOCAL_RANK, which does not exist where each task sees one GPU
    args = argparse.Namespace(device_rank=torch.cuda.current_device()) if torch.cuda.is_available() else None
    engine, _, _, scheduler = deepspeed.initialize(args=args, model=model, optimizer=optimizer,
                                                   lr_scheduler=scheduler, config=ds)
    ckpt.weights_only_engine(engine)  # resume reads every file with weights_only=True
    if cfg.method.teacher.ema == "flat":
        flat_student(engine, t.zero_stage)
    return engine, scheduler, lr_step_every


def _teacher(cfg: RunConfig, engine) -> EMATeacher | None:
    """The EMA teacher, after `deepspeed.initialize`: it copies the weights every rank now shares."""
    if not cfg.method.needs_teacher:
        return None
    tc = cfg.method.teacher
    return EMATeacher(engine.module, tc.decay, tc.warmup, tc.backend, tc.ema)


def _resolved(cfg: RunConfig, micro_batch: int, grad_accum: int, max_steps: int) -> RunConfig:
    """A copy of `cfg` with the values the world size decides (the record of sources kept)."""
    out = copy.copy(cfg)
    out.data = dataclasses.replace(cfg.data, batch_size=micro_batch)
    out.train = dataclasses.replace(cfg.train, grad_accum=grad_accum, max_steps=max_steps)
    return out


def scaled(asked: RunConfig, shards: Location, rank: int, world: int) -> tuple[RunConfig, BatchPlan, ShardStream, int]:
    """(the config resolved for `world` ranks, the batch plan, this rank's training stream, the
    epoch's length in optimizer steps): the per-rank micro-batch and the accumulation from the
    global batch, then the length from the epochs (config/scale.py). For a fixed global batch
    an epoch is the same number of steps at every world size."""
    plan = batch_plan(asked.train.global_batch, asked.data.batch_size, asked.train.grad_accum, world)
    cfg = _resolved(asked, plan.micro_batch, plan.grad_accum, asked.train.max_steps)
    stream = ShardStream(folder(shards, "train"), cfg.data, rank, world, cfg.seed)
    steps_per_epoch = max(1, len(stream) // plan.grad_accum)
    cfg = _resolved(cfg, plan.micro_batch, plan.grad_accum,
                    run_length(cfg.train.epochs, cfg.train.max_steps, steps_per_epoch))
    return cfg, plan, stream, steps_per_epoch


def _build(asked: RunConfig, env: DistEnv, threads: int) -> Run:
    run_dir = Path(asked.run_dir)
    shards = shard_root(asked.data.shards, run_dir / "shards")
    # every rank sees the run folder and the shards, or the job stops naming the node that does not
    ranks = check_visible(run_dir, shards, this_rank(env, threads))
    precision = resolve_precision(asked.train.precision)
    torch.manual_seed(asked.seed)
    cfg, plan, stream, steps_per_epoch = scaled(asked, shards, env.rank, env.world_size)
    _check_shards(cfg, shards, stream.manifest)
    model = _model(cfg, stream.manifest, shards)
    num_parameters = sum(p.numel() for p in model.parameters())
    features = [{k: v for k, v in f.items() if k != "source"} for f in stream.manifest.features]
    record = {"model": dataclasses.asdict(cfg.model), "features": features,
              "classes": list(stream.manifest.classes), "dataset": stream.manifest.dataset,
              "world_size": env.world_size}
    if env.rank == 0 and (cleared := ckpt.clear_incomplete(run_dir)):
        print(f"cleared {len(cleared)} incomplete checkpoint folder(s) (a save cut short): {', '.join(cleared)}",
              flush=True)
    resume = ckpt.find_resume(run_dir, cfg.train.resume)
    if resume is not None:  # before anything is loaded or written
        ckpt.check_fits(resume, record)
    engine, scheduler, lr_step_every = _engine(cfg, model, steps_per_epoch, env.world_size, precision)
    teacher = _teacher(cfg, engine)
    if cfg.train.compile:  # in place: the same parameters, the same state_dict keys
        engine.module.compile()
        if teacher is not None:
            teacher.module.compile()
    return Run(cfg, asked, plan, steps_per_epoch, env, threads, run_dir, shards, ranks, precision, stream, engine,
               scheduler, teacher,
               TrainState(stream, teacher), record, resume, num_parameters, lr_step_every)


def build_run(cfg: RunConfig) -> Run:
    """Starts this rank's process group and builds the run (under `leaving_group_on_error`)."""
    env = discover()
    threads = set_threads(cfg.train.threads)
    init_distributed(env, cfg.train.dist_timeout_s)
    return _build(cfg, env, threads)


@contextmanager
def leaving_group_on_error():
    """If the block fails, this process leaves the process group before the error goes on: a
    gloo group still open at exit aborts it (SIGABRT, "terminate called without an active
    exception") instead of letting it exit with the error's code."""
    try:
        yield
    except Exception:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        raise
