"""The training loop on DeepSpeed: one engine for every launch path (python, torchrun,
accelerate launch, srun, submitit), the same checkpoints, the same outputs."""
from __future__ import annotations

import dataclasses
import json
import statistics
import time
from pathlib import Path

import torch
import torch.distributed as dist

from avvp_dist.data.location import folder, is_url, shard_root
from avvp_dist.data.shards import Manifest, ShardError
from avvp_dist.distributed.env import discover, init_distributed, threads_per_rank
from avvp_dist.engine import checkpoint as ckpt
from avvp_dist.engine.ds_config import deepspeed_config, resolve_precision
from avvp_dist.engine.logger import RunLogger, plot_curves
from avvp_dist.engine.placement import check_visible, this_rank
from avvp_dist.engine.record import describe_preset, preset_record, record_end, record_start
from avvp_dist.engine.signals import EXIT_PREEMPTED, EXIT_TERMINATED, NONE, PREEMPT, StopSignals, agree_step
from avvp_dist.engine.schedule import lr_lambda
from avvp_dist.engine.state import TrainState
from avvp_dist.eval.datasets import dataset_spec
from avvp_dist.method.ema import EMATeacher, contiguous_runs, flatten_parameters_
from avvp_dist.method.objective import step_losses
from avvp_dist.model.checkpoint import load_model, save_model
from avvp_dist.model.model import AVVPModel
from avvp_dist.profiling import NULL_TIMER, StepTimer

# written in the run folder with EXIT_PREEMPTED: srun --kill-on-bad-exit may kill the last ranks
# while they exit with code 3, so a batch script reads this file rather than srun's exit code
PREEMPTED_MARKER = "PREEMPTED"
# after a SIGTERM stop, every rank's checkpoint saved: what slurm/train.sh reports on (an exit code of
# 143 alone also comes from a task that SIGTERM killed before it could save, e.g. srun ending the
# other tasks after one of them died)
TERMINATED_MARKER = "TERMINATED"
COMPILE_WARMUP_STEPS = 3  # left out of the throughput with train.compile


class TrainingStopped(RuntimeError):
    """The run stopped on purpose (too many non-finite losses); a checkpoint was saved."""


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


def _nodes(ranks: list[dict]) -> str:
    """`2 node(s): n1, n2` from `placement.this_rank` records."""
    names = list(dict.fromkeys(r["node"] for r in ranks))
    return f"{len(names)} node(s): {', '.join(names)}"


class Trainer:
    """Builds everything from a `RunConfig` and runs it: `Trainer(cfg).run()`."""

    def __init__(self, cfg):
        import deepspeed

        from avvp_dist.data.stream import ShardStream, label_pair

        self.cfg, t = cfg, cfg.train
        self.env = discover()
        self.threads = set_threads(t.threads)
        init_distributed(self.env, t.dist_timeout_s)
        self.rank, self.world = self.env.rank, self.env.world_size
        self.run_dir = Path(cfg.run_dir)
        self.shards = shard_root(cfg.data.shards, self.run_dir / "shards")
        # every rank sees the run folder and the shards, or the job stops naming the node that does not
        self.ranks = check_visible(self.run_dir, self.shards, this_rank(self.env, self.threads))
        self.precision = resolve_precision(t.precision)
        torch.manual_seed(cfg.seed)
        self.stream = ShardStream(folder(self.shards, "train"), cfg.data, self.rank, self.world, cfg.seed)
        manifest = self.stream.manifest
        for split in ("val", "test"):  # there before training starts, not at the first validation
            split_manifest = Manifest.load(folder(self.shards, split))
            if not is_url(self.shards):
                split_manifest.verify(folder(self.shards, split))
        self.classes, self.dataset = manifest.classes, manifest.dataset
        if cfg.method.needs_external and label_pair(manifest) is None:
            raise ShardError(f"method.pseudo.source={cfg.method.pseudo.source} trains with external segment labels, "
                             f"but {folder(self.shards, 'train')} holds none: write the shards with "
                             "data.external_labels=true (and the labels under the raw folder, docs/data.md)")
        self.select_metric = dataset_spec(self.dataset).select_metric
        model = AVVPModel(manifest.features, len(self.classes), cfg.model)
        if cfg.model.standardize:
            if not manifest.stats:
                raise ShardError(f"{folder(self.shards, 'train')}: its manifest has no feature statistics, which "
                                 "model.standardize needs; write the shards again with this version")
            model.set_feature_stats(manifest.stats)
        flatten_parameters_(model)  # the flat EMA (method.teacher.ema=flat) then updates it in one pass (ZeRO 0)
        optimizer = make_optimizer(model.parameters(), t.optimizer, t.lr, t.weight_decay, t.adam_beta1)
        # the step schedule counts epochs in optimizer steps: batches per epoch on a rank / accumulation
        multiplier, self.lr_step_every = lr_lambda(t, max(1, len(self.stream) // t.grad_accum))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier)
        self.num_parameters = sum(p.numel() for p in model.parameters())
        # what a checkpoint of this run fits; a resume checks it before anything is loaded or written
        self.record = {"model": dataclasses.asdict(cfg.model), "features": manifest.features,
                       "classes": list(self.classes), "dataset": self.dataset, "world_size": self.world}
        resume = ckpt.find_resume(self.run_dir, t.resume)
        if resume is not None:
            ckpt.check_fits(resume, self.record)
        ds = deepspeed_config(t, cfg.data.batch_size, self.world, self.precision)
        self.engine, _, _, self.scheduler = deepspeed.initialize(model=model, optimizer=optimizer,
                                                                 lr_scheduler=scheduler, config=ds)
        ckpt.weights_only_engine(self.engine)  # resume reads every file with weights_only=True
        flat_student(self.engine, t.zero_stage)
        self.device = self.engine.device
        self.dtype = next(self.engine.module.parameters()).dtype
        # after initialize: the teacher copies the weights every rank now shares
        self.teacher = (EMATeacher(self.engine.module, cfg.method.teacher.decay, cfg.method.teacher.warmup,
                                   cfg.method.pseudo.backend, cfg.method.teacher.ema)
                        if cfg.method.needs_teacher else None)
        if t.compile:  # in place: the same parameters, the same state_dict keys
            self.engine.module.compile()
            if self.teacher is not None:
                self.teacher.module.compile()
        self.state = TrainState(self.stream, self.teacher)
        self.overhead_s = 0.0  # validation and checkpoint time, left out of the throughput
        sync = torch.cuda.synchronize if self.device.type == "cuda" else None
        self.timer = StepTimer(sync) if t.profile else NULL_TIMER
        if resume is not None:
            self._restore(resume)
        if self.rank == 0:  # only now: a checkpoint that does not fit, or is refused, leaves the folder as it was
            facts = {"parameters": self.num_parameters, "share_layers": cfg.model.share_layers,
                     "lr_step_every": self.lr_step_every}
            record_start(self.run_dir, cfg, self.env.source, self.world, self.precision, self.threads, self.step,
                         resume, self.ranks, facts)
            layers = ("one hybrid-attention layer per depth for both directions" if cfg.model.share_layers
                      else "separate audio and visual layers")
            decay = f"; lr x{t.lr_step_gamma} every {self.lr_step_every} steps" if self.lr_step_every else ""
            print(f"{describe_preset(cfg)}; model {self.num_parameters:,} parameters ({layers}){decay}", flush=True)
            for marker in (PREEMPTED_MARKER, TERMINATED_MARKER):
                (self.run_dir / marker).unlink(missing_ok=True)
        self.signals = StopSignals()
        self.stop_kind = NONE
        self.logger = RunLogger(self.run_dir, self.rank == 0, t.max_steps, self.state.step)

    @property
    def step(self) -> int:
        """Optimizer steps applied so far."""
        return self.state.step

    # ---- checkpoints ---------------------------------------------------------------
    def _save(self) -> Path:
        t0 = time.perf_counter()
        path = ckpt.save(self.engine, self.run_dir, self.step, self.state.state_dict(), self.state.rank_state_dict(),
                         self.rank, self.cfg.train.keep_checkpoints, self.record)
        self.overhead_s += time.perf_counter() - t0
        return path

    def _restore(self, path: Path) -> None:
        client, rank_state = ckpt.load(self.engine, path, self.rank)
        self.state.load_state_dict(client, rank_state, source=str(path))
        if self.rank == 0:
            print(f"resumed from {path} at step {self.step}", flush=True)

    # ---- one micro-step ------------------------------------------------------------
    def _batch(self, batch: dict) -> dict:
        """The batch on the training device, features in the training precision."""
        batch["features"] = {k: v.to(self.device, self.dtype) for k, v in batch["features"].items()}
        batch["mask"], batch["labels"] = batch["mask"].to(self.device), batch["labels"].to(self.device)
        if "segment_labels" in batch:
            batch["segment_labels"] = batch["segment_labels"].to(self.device)
        return batch

    def _micro_step(self, batch: dict) -> dict | None:
        """Loss, backward and (at an accumulation boundary) the optimizer step. None: skipped."""
        cfg, state = self.cfg, self.state
        teacher = self.teacher.module if self.teacher is not None else None
        terms = step_losses(self.engine, teacher, self._batch(batch), cfg.method, state.step, self.timer)
        loss = terms["loss"]
        state.micro_step += 1
        if state.micro_step in cfg.train.debug_nan_steps and self.rank == 0:
            loss = loss * float("nan")
        # one collective and one host read for both: a non-finite loss on any rank (every rank
        # skips together) and the stop-signal kind every rank acts on at this step's boundary
        nonfinite, self.stop_kind = agree_step(~torch.isfinite(loss.detach()), self.signals.kind)
        if nonfinite:
            state.nan_skips += 1
            state.consecutive_nan += 1
            return None
        state.consecutive_nan = 0
        with self.timer.section("backward"):
            self.engine.backward(loss)
        with self.timer.section("optimizer"):
            self.engine.step()
        return terms

    # ---- evaluation ----------------------------------------------------------------
    def _models(self) -> dict:
        models = {"student": self.engine.module}
        if self.teacher is not None:
            models["teacher"] = self.teacher.module
        return models

    def _evaluate(self, split: str, models: dict, checkpoints: dict | None = None) -> dict:
        from avvp_dist.eval.run import evaluate

        data = dataclasses.replace(self.cfg.data, num_workers=0, batch_size=max(8, self.cfg.data.batch_size))
        float_models = {}
        for name, m in models.items():  # evaluate in fp32 whatever the training precision
            float_models[name] = m if next(m.parameters()).dtype == torch.float32 else _fp32_copy(m)
        return evaluate(checkpoints or {}, self.shards, data, split, self.cfg.train.protocol, self.rank, self.world,
                        model_override=float_models, detection=self.cfg.eval.detection)

    def _validate(self) -> None:
        t0 = time.perf_counter()
        result = self._evaluate("val", self._models())
        key, best = self.select_metric, self.state.best
        for name, rep in result["models"].items():
            self.logger.record(f"val/{name}", self.step, {"score": rep["metrics"][key], **rep["metrics"]})
        chosen = self.cfg.train.select if self.cfg.train.select in result["models"] else "student"
        score = float(result["models"][chosen]["metrics"][key])  # a plain float, whatever the spec returns
        if score > best["score"]:
            best = self.state.best = {"score": score, "step": self.step, "metric": key, "model": chosen}
            if self.rank == 0:
                for name, m in self._models().items():
                    save_model(m, self.run_dir / f"best_{name}.pt", self.classes, self.dataset,
                               extra={"step": self.step, key: float(result["models"][name]["metrics"][key]),
                                      **preset_record(self.cfg)})
        if self.rank == 0:
            self.logger.bar.write(f"step {self.step}: val {key} " + ", ".join(
                f"{n} {r['metrics'][key]:.2f}" for n, r in result["models"].items()) + f" (best {best['score']:.2f})")
        self.overhead_s += time.perf_counter() - t0

    # ---- the loop ------------------------------------------------------------------
    def run(self) -> int:
        """Trains to `train.max_steps`; returns 0, EXIT_PREEMPTED or EXIT_TERMINATED (a checkpoint
        saved after a stop signal). Rank 0 appends how it ended to history.jsonl."""
        status, error = "failed", None
        try:
            code = self._run()
            status = {0: "finished", EXIT_PREEMPTED: "preempted", EXIT_TERMINATED: "terminated"}[code]
            return code
        except TrainingStopped as e:
            status, error = "stopped", str(e)
            raise
        except BaseException as e:
            error = f"{type(e).__name__}: {e}"[:500]
            raise
        finally:
            self.signals.restore()
            self.logger.close()
            if self.rank == 0:
                record_end(self.run_dir, status, self.step, error)

    def _run(self) -> int:
        t, state = self.cfg.train, self.state
        t0, start_step = time.perf_counter(), state.step
        # compiled: the first steps compile (and recompile once shapes vary); the throughput
        # starts after them
        warm = COMPILE_WARMUP_STEPS if t.compile else 0
        while state.step < t.max_steps:
            batches = iter(self.stream)
            while True:
                with self.timer.section("data"):
                    batch = next(batches, None)
                if batch is None:
                    break
                n = len(batch["keys"])
                terms = self._micro_step(batch)
                if terms is None:
                    if state.consecutive_nan >= t.max_consecutive_nan:
                        path = self._save()
                        raise TrainingStopped(
                            f"{state.consecutive_nan} non-finite losses in a row at step {state.step} "
                            f"({state.nan_skips} skipped in all); last good state saved in {path}")
                    continue
                if state.accumulated % t.grad_accum:
                    continue
                applied = self.engine.was_step_applied()  # an fp16 overflow step does not count
                if applied:
                    state.step += 1
                    if self.teacher is not None:
                        with self.timer.section("ema"):
                            self.teacher.update(self.engine.module)
                    self.timer.end_step()
                    self._after_step(terms, n)
                    if warm and state.step - start_step == min(warm, t.max_steps - start_step - 1):
                        t0, start_step, self.overhead_s, warm = time.perf_counter(), state.step, 0.0, 0
                stop = self.stop_kind  # agreed with this micro-step's non-finite flag
                if stop:
                    path = self._save()
                    if stop == PREEMPT:
                        if self.rank == 0:
                            # before the exit barrier, so it exists whichever rank's exit a launcher sees first
                            (self.run_dir / PREEMPTED_MARKER).write_text(f"step {state.step}\ncheckpoint {path}\n")
                            print(f"preempted at step {state.step}: checkpoint {path}; exiting for requeue",
                                  flush=True)
                        return EXIT_PREEMPTED
                    if self.rank == 0:
                        (self.run_dir / TERMINATED_MARKER).write_text(f"step {state.step}\ncheckpoint {path}\n")
                        print(f"terminated (SIGTERM) at step {state.step}: checkpoint {path}; not requeued "
                              "(resume with train.resume=auto)", flush=True)
                    return EXIT_TERMINATED
                if applied and t.checkpoint_every and state.step % t.checkpoint_every == 0:
                    self._save()
                if state.step >= t.max_steps:
                    break
        if not t.checkpoint_every or state.step % t.checkpoint_every:
            self._save()
        if t.profile and self.rank == 0:
            self._write_profile(state.step - start_step)
        if t.final_eval and not (t.eval_every and state.step % t.eval_every == 0):
            self._validate()
        self._finish(time.perf_counter() - t0 - self.overhead_s, state.step - start_step)
        return 0

    def _after_step(self, terms: dict, n: int) -> None:
        """Logging and validation, once per optimizer step applied."""
        t, step = self.cfg.train, self.state.step
        write = step % t.log_every == 0
        values = {}
        if write:  # one host read for every term at once
            numbers = torch.stack([v.detach().to(self.device, torch.float64).reshape(()) for v in terms.values()])
            values = dict(zip(terms, numbers.tolist()))
            values.update(lr=self.scheduler.get_last_lr()[0], nan_skips=self.state.nan_skips, epoch=self.stream.epoch)
        self.logger.step(step, n * self.world * t.grad_accum, values, write)
        if t.eval_every and step % t.eval_every == 0:
            self._validate()

    def _write_profile(self, steps: int) -> None:
        """profile.json: median seconds per step of each section, after a warm-up."""
        skip = max(5, steps // 10)
        sections = self.timer.summary(skip)
        per_step = self.cfg.data.batch_size * self.world * self.cfg.train.grad_accum
        measured = self.timer.steps[skip:]
        seconds = sum(s["step"] for s in measured)
        record = {"world_size": self.world, "threads_per_rank": self.threads,
                  "batch_per_rank": self.cfg.data.batch_size, "samples_per_step": per_step, "warmup_steps": skip,
                  "sections_s": sections, "sections_mean_s": self.timer.summary(skip, statistics.fmean),
                  "samples_per_s": per_step * len(measured) / seconds if seconds else None,
                  "method": {"pseudo": self.cfg.method.pseudo.enabled, "cma": self.cfg.method.cma.enabled,
                             "teacher": self.teacher is not None}}
        (self.run_dir / "profile.json").write_text(json.dumps(record, indent=1))

    def _finish(self, seconds: float, steps: int) -> None:
        """Test-split evaluation of the best checkpoints, tables, plots, curves, summary."""
        from avvp_dist.eval.run import print_report, write_outputs

        if self.rank == 0:
            for name, m in self._models().items():
                save_model(m, self.run_dir / f"final_{name}.pt", self.classes, self.dataset,
                           extra={"step": self.step, **preset_record(self.cfg)})
        if dist.is_initialized():
            dist.barrier()  # rank 0 has written every best_/final_ file before anyone reads them
        rate = steps * self.cfg.data.batch_size * self.world * self.cfg.train.grad_accum / max(seconds, 1e-9)
        throughput = (f"throughput {rate:.1f} samples/s over {steps} steps ({seconds:.0f} s of training, without "
                      f"validation and checkpoints); {self.state.nan_skips} non-finite steps skipped")
        if not self.cfg.train.final_eval:
            if self.rank == 0:
                print(f"{throughput}\nno final evaluation (train.final_eval=false)", flush=True)
                (self.run_dir / "summary.txt").write_text(throughput + "\n")
            return
        # the same names on every rank (not what each rank happens to see on disk): same collectives
        # evaluated on the training device, like the periodic validations
        models = {n: load_model(self.run_dir / f"best_{n}.pt", self.device)[0] for n in self._models()}
        result = self._evaluate("test", models)
        if self.rank != 0:
            return
        result.update(preset_record(self.cfg))  # what trained, in metrics.json
        write_outputs(result, self.run_dir / "eval_test", self.cfg.train.plots)
        curves = plot_curves(self.run_dir)
        print()
        print_report(result)
        best = self.state.best
        key = best.get("metric", "score")
        summary = [
            "", "=" * 72, f"run {self.run_dir}",
            describe_preset(self.cfg).replace("preset ", "preset     ", 1),
            f"data       {self.dataset}: {self.stream.manifest.num_samples} training videos, "
            f"{len(self.classes)} classes, shards in {self.shards}",
            f"world      {self.world} rank(s) ({self.env.source}) on {_nodes(self.ranks)}, "
            f"{self.threads} threads/rank, ZeRO {self.cfg.train.zero_stage}, {self.precision}",
            throughput,
            f"best       {best.get('model')} {key} {best['score']:.2f} at step {best['step']} "
            f"-> {self.run_dir / ('best_' + str(best.get('model')) + '.pt')}",
            f"test       {self.run_dir / 'eval_test' / 'metrics.json'}; plots in {self.run_dir / 'eval_test' / 'plots'}",
            f"curves     {curves}", "=" * 72]
        print("\n".join(summary), flush=True)
        (self.run_dir / "summary.txt").write_text("\n".join(summary) + "\n")


def _fp32_copy(module: torch.nn.Module) -> torch.nn.Module:
    import copy

    return copy.deepcopy(module).float()


def run_to_end(trainer: Trainer) -> int:
    """Runs a built trainer, then leaves the process group; returns the exit code."""
    code = trainer.run()
    if dist.is_initialized():  # only after a clean finish: a failed rank must not wait here
        dist.barrier()
        dist.destroy_process_group()
    return code


def build_trainer(cfg) -> Trainer:
    """`Trainer(cfg)`; if that fails, this process leaves the process group before the error
    goes on."""
    try:
        return Trainer(cfg)
    except Exception:
        # leave the process group before the error ends the process: a gloo group still open at
        # exit aborts it (SIGABRT, "terminate called without an active exception") instead of
        # letting it exit with the error's code
        if dist.is_initialized():
            dist.destroy_process_group()
        raise


def train(cfg) -> int:
    """Entry point of every launch path; returns the process exit code (0, or
    EXIT_PREEMPTED after a preemption signal and a complete checkpoint)."""
    return run_to_end(build_trainer(cfg))
