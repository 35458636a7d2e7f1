"""The training loop on DeepSpeed: one engine for every launch path (python, torchrun,
accelerate launch, srun, submitit), the same checkpoints, the same outputs.

    code = train(cfg)                  # build_run, then Trainer(run).run(); the exit code

`build.py` builds the run, `stop.py` says how it stops, `report.py` what it reports; this
module is the loop: micro-steps, the optimizer step, the EMA update, validation and checkpoints.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.distributed as dist

from avvp_dist.config import RunConfig
from avvp_dist.data.batch import Batch
from avvp_dist.engine import checkpoint as ckpt
from avvp_dist.engine.build import Run, build_run, leaving_group_on_error
from avvp_dist.engine.logger import RunLogger
from avvp_dist.engine.record import describe_preset, record_end, record_start
from avvp_dist.engine.report import evaluate_models, finish, models_of, save_models, start_notes, write_profile
from avvp_dist.engine.stop import NONE, STATUS, StopSignals, TrainingStopped, agree_step, clear_markers, stopped
from avvp_dist.engine.telemetry import flat_scores, selection_quality, stream_scores
from avvp_dist.engine.throughput import COMPILE_WARMUP_STEPS, Throughput
from avvp_dist.eval.datasets import dataset_spec
from avvp_dist.method.objective import StepLosses, step_losses
from avvp_dist.profiling import NULL_TIMER, StepTimer


class Trainer:
    """Runs a built `Run` to `train.max_steps`: `Trainer(build_run(cfg)).run()`."""

    def __init__(self, run: Run, signals: StopSignals | None = None):
        self.parts, self.cfg, self.state = run, run.cfg, run.state
        self.engine, self.teacher, self.rank = run.engine, run.teacher, run.rank
        self.select_metric = dataset_spec(run.manifest.dataset).select_metric
        cma = self.cfg.method.cma
        self.embed = run.engine.module.embed if cma.enabled and cma.embedding == "class_aware" else None
        device = run.engine.device
        self.dtype = next(run.engine.module.parameters()).dtype
        self.timer = StepTimer(torch.cuda.synchronize if device.type == "cuda" else None) \
            if self.cfg.train.profile else NULL_TIMER
        self.clock = Throughput(0, self.cfg.train.max_steps)  # started afresh when training starts
        if run.resume is not None:
            self._restore(run.resume)
        if self.rank == 0:  # only now: a checkpoint that does not fit, or is refused, leaves the folder as it was
            self._record_start()
        self.signals = signals or StopSignals()  # `train` installs them before the build
        self.stop_kind = NONE
        self.logger = RunLogger(run.run_dir, self.rank == 0, self.cfg.train.max_steps, self.state.step)

    @property
    def step(self) -> int:
        """Optimizer steps applied so far."""
        return self.state.step

    def _record_start(self) -> None:
        run, t = self.parts, self.cfg.train
        facts = {"parameters": run.num_parameters, "backbone": self.cfg.model.backbone,
                 "share_layers": self.cfg.model.share_layers, "lr_step_every": run.lr_step_every}
        record_start(run.run_dir, run.asked, run.env.source, run.world, run.precision, run.threads, self.step,
                     run.resume, run.ranks, facts, run.scale())
        layers = ("CoLeaF's backbone" if self.cfg.model.backbone == "coleaf" else
                  "one hybrid-attention layer per depth for both directions" if self.cfg.model.share_layers
                  else "separate audio and visual layers")
        decay = f"; lr x{t.lr_step_gamma} every {run.lr_step_every} steps" if run.lr_step_every else ""
        print(f"{describe_preset(self.cfg)}; model {run.num_parameters:,} parameters ({layers}){decay}", flush=True)
        for line in start_notes(run):
            print(line, flush=True)
        clear_markers(run.run_dir)

    # ---- checkpoints ---------------------------------------------------------------
    def _save(self) -> Path:
        with self.clock.overhead():
            return ckpt.save(self.engine, self.parts.run_dir, self.step, self.state.state_dict(),
                             self.state.rank_state_dict(), self.rank, self.cfg.train.keep_checkpoints,
                             self.parts.record)

    def _restore(self, path: Path) -> None:
        """Loads a checkpoint; what stops it (a damaged file, a stream of another geometry, a
        state of another format) is a `CheckpointError`: one line and exit code 2."""
        try:
            client, rank_state = ckpt.load(self.engine, path, self.rank)
            self.state.load_state_dict(client, rank_state, source=str(path))
        except ckpt.CheckpointError:
            raise
        except (ValueError, KeyError, TypeError, OSError, RuntimeError) as e:
            raise ckpt.CheckpointError(f"{path}: cannot resume from it: {e}") from e
        if self.rank == 0:
            print(f"resumed from {path} at step {self.step}", flush=True)

    # ---- the loop ------------------------------------------------------------------
    def run(self) -> int:
        """Trains to `train.max_steps`; returns 0, EXIT_PREEMPTED or EXIT_TERMINATED (a checkpoint
        saved after a stop signal). Rank 0 appends how it ended to history.jsonl."""
        status, error = "failed", None
        try:
            code = self._train()
            status = STATUS[code]
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
                record_end(self.parts.run_dir, status, self.step, error)

    def _batches(self):
        """This rank's batches of one epoch from the current position, timed as `data`."""
        batches = iter(self.parts.stream)
        while True:
            with self.timer.section("data"):
                batch = next(batches, None)
            if batch is None:
                return
            yield batch

    def _train(self) -> int:
        t, state = self.cfg.train, self.state
        # compiled: the first steps compile (and recompile once shapes vary); the throughput starts after them
        self.clock = Throughput(state.step, t.max_steps, COMPILE_WARMUP_STEPS if t.compile else 0)
        while state.step < t.max_steps:
            for batch in self._batches():
                losses = self._micro_step(batch)
                if losses is None:  # skipped on every rank: a non-finite loss on one of them
                    self._check_nonfinite()
                    continue
                if state.accumulated % t.grad_accum:
                    continue
                applied = self.engine.was_step_applied()  # an fp16 overflow step does not count
                if applied:
                    self._after_step(losses, batch)
                if self.stop_kind:  # agreed with this micro-step's non-finite flag
                    return stopped(self.stop_kind, self.parts.run_dir, state.step, self._save(), self.rank)
                if applied and t.checkpoint_every and state.step % t.checkpoint_every == 0:
                    self._save()
                if state.step >= t.max_steps:
                    break
        self._end()
        return 0

    def _micro_step(self, batch: Batch) -> StepLosses | None:
        """Loss, backward and (at an accumulation boundary) the optimizer step. None: skipped."""
        state = self.state
        teacher = self.teacher.module if self.teacher is not None else None
        logged = (state.step + 1) % self.cfg.train.log_every == 0  # the step this micro-step makes is logged
        losses = step_losses(self.engine, teacher, batch.to(self.engine.device, self.dtype), self.cfg.method,
                             state.step, self.timer, self.embed, telemetry=logged)
        state.micro_step += 1
        # one collective and one host read for both: a non-finite loss on any rank (every rank
        # skips together) and the stop-signal kind every rank acts on at this step's boundary
        nonfinite, self.stop_kind = agree_step(~torch.isfinite(losses.loss.detach()), self.signals.kind)
        if nonfinite:
            state.nan_skips += 1
            state.consecutive_nan += 1
            return None
        state.consecutive_nan = 0
        with self.timer.section("backward"):
            self.engine.backward(losses.loss)
        with self.timer.section("optimizer"):
            self.engine.step()
        return losses

    def _check_nonfinite(self) -> None:
        """Stops the run, after saving the last good state, at `train.max_consecutive_nan`
        non-finite losses in a row."""
        state = self.state
        if state.consecutive_nan >= self.cfg.train.max_consecutive_nan:
            path = self._save()
            raise TrainingStopped(f"{state.consecutive_nan} non-finite losses in a row at step {state.step} "
                                  f"({state.nan_skips} skipped in all); last good state saved in {path}")

    def _after_step(self, losses: StepLosses, batch: Batch) -> None:
        """Once per optimizer step applied: the step count, the EMA, logging and validation."""
        t, state = self.cfg.train, self.state
        state.step += 1
        extra = {}
        if self.teacher is not None:
            with self.timer.section("ema"):
                extra["ema_decay"] = self.teacher.update(self.engine.module)  # the decay in force
        self.timer.end_step()
        write = state.step % t.log_every == 0
        if write and self.rank == 0:  # the last micro-batch's masks against its truth, where it has some
            m = self.parts.manifest
            extra.update(stream_scores(batch, losses, m.classes, dataset_spec(m.dataset).data.grid, self.cfg.method))
        self.logger.train_step(state.step, len(batch) * self.parts.world * t.grad_accum, losses.loss, losses.terms,
                               write, lr=self.parts.scheduler.get_last_lr()[0],
                               nan_skips=state.nan_skips, epoch=self.parts.stream.epoch, **extra)
        if t.eval_every and state.step % t.eval_every == 0:
            self._validate()
        self.clock.after_step(state.step)

    def _validate(self) -> None:
        """A validation of student and teacher; the best so far (by the dataset's metric, of
        the model `train.select` names) is saved as best_*.pt."""
        with self.clock.overhead():
            result = evaluate_models(self.parts, "val", models_of(self.parts))
            reports, key = result["models"], self.select_metric
            for name, rep in reports.items():
                self.logger.record(f"val/{name}", self.step, {"score": rep["metrics"][key], **rep["metrics"]})
            self._mask_quality(result)
            chosen = self.cfg.train.select if self.cfg.train.select in reports else "student"
            score = float(reports[chosen]["metrics"][key])  # a plain float, whatever the spec returns
            if score > self.state.best["score"]:
                self.state.best = {"score": score, "step": self.step, "metric": key, "model": chosen}
                if self.rank == 0:
                    save_models(self.parts, "best", self.step,
                                {n: {key: float(r["metrics"][key])} for n, r in reports.items()})
            if self.rank == 0:
                self.logger.bar.write(f"step {self.step}: val {key} " + ", ".join(
                    f"{n} {r['metrics'][key]:.2f}" for n, r in reports.items())
                    + f" (best {self.state.best['score']:.2f})")

    def _mask_quality(self, result: dict) -> None:
        """The teacher's masks and the student's own against the split's truth (`val/masks` in
        metrics.jsonl; per class in mask_quality.jsonl), where the split has dense labels."""
        if self.rank != 0 or not self.cfg.method.masks_from_teacher:
            return
        quality = selection_quality(result, dataset_spec(result["dataset"]), self.cfg.method)
        if quality is not None:
            self.logger.record("val/masks", self.step, flat_scores(quality))
            self.logger.record_json("mask_quality.jsonl", {"step": self.step, "split": result["split"], **quality})

    def _end(self) -> None:
        """The last checkpoint, the profile, a last validation (unless one just ran), the report."""
        t, state = self.cfg.train, self.state
        if not t.checkpoint_every or state.step % t.checkpoint_every:
            self._save()
        steps = self.clock.steps(state.step)
        if t.profile and self.rank == 0:
            write_profile(self.parts, self.timer, steps)
        if t.final_eval and not (t.eval_every and state.step % t.eval_every == 0):
            self._validate()
        finish(self.parts, self.clock.seconds(), steps, state.nan_skips, state.best)


def train(cfg: RunConfig) -> int:
    """Builds the run, trains it, then leaves the process group; returns the exit code (0,
    EXIT_PREEMPTED or EXIT_TERMINATED). What every launcher ends in (`launch.entry`). The stop
    signals' handlers come first: a SIGUSR2 or SIGTERM during start-up (DeepSpeed's start, the
    resume load) is kept, and the first step saves a checkpoint and stops as it asks."""
    signals = StopSignals()
    try:
        with leaving_group_on_error():
            trainer = Trainer(build_run(cfg), signals)
    except BaseException:
        signals.restore()
        raise
    code = trainer.run()
    if dist.is_initialized():  # only after a clean finish: a failed rank must not wait here
        dist.barrier()
        dist.destroy_process_group()
    return code
