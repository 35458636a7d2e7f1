"""TrainConfig: optimisation, precision, ZeRO stage, evaluation and checkpoint cadence."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class TrainConfig:
    max_steps: int = 2000  # optimizer steps (unless `epochs` is set)
    # the run's length in passes over the training split (0: `max_steps`); with `global_batch`
    # the same number of steps at every world size (config/scale.py)
    epochs: float = 0.0
    # videos per optimizer step over every rank, the same at every world size: each rank takes
    # global_batch / ranks in micro-batches of at most data.batch_size, the rest accumulated
    # (config/scale.py); 0: data.batch_size per rank (x grad_accum), growing with the world size
    global_batch: int = 0
    lr: float = 3e-4  # HAN's Adam learning rate
    weight_decay: float = 1e-4  # mild: the HAN model is small and the data weakly labelled
    # adamw: torch's fused AdamW (decoupled weight decay); adam: torch.optim.Adam, HAN's optimizer
    # (weight_decay as an L2 term in the gradient, as torch's Adam applies it)
    optimizer: Literal["adamw", "adam"] = "adamw"
    adam_beta1: float = 0.9  # torch's default; VALOR trains with 0.5
    # warmup_cosine: linear warm-up, then cosine to min_lr_ratio; step: HAN's StepLR, the lr times
    # lr_step_gamma every lr_step_epochs epochs, counted in optimizer steps from the epoch length
    schedule: Literal["warmup_cosine", "step"] = "warmup_cosine"
    warmup_steps: int = 100  # linear warm-up, then cosine
    min_lr_ratio: float = 0.05  # cosine floor as a fraction of lr
    lr_step_epochs: float = 10.0  # HAN: StepLR(step_size=10 epochs)
    lr_step_gamma: float = 0.1  # HAN: gamma=0.1
    grad_clip: float = 1.0  # attention models spike early; clip the global norm
    grad_accum: int = 1  # micro-steps per optimizer step (with global_batch: derived, leave at 1)
    zero_stage: int = 0  # 0, 1 or 2; the HAN model is small, ZeRO matters for large ones
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: bf16 / fp16 on GPUs, fp32 on CPU
    eval_every: int = 500  # steps between validation runs (0: only at the end)
    checkpoint_every: int = 500  # steps between checkpoints (0: only at the end)
    keep_checkpoints: int = 2  # complete checkpoints kept on disk
    select: Literal["teacher", "student"] = "teacher"  # which model the best checkpoint is chosen by
    log_every: int = 10  # steps between JSONL / TensorBoard records
    max_consecutive_nan: int = 5  # non-finite losses in a row before the run stops
    resume: str = ""  # "" (fresh run), "auto" (latest complete checkpoint of run_dir) or a checkpoint folder
    dist_timeout_s: int = 600  # collectives that wait longer fail instead of hanging
    threads: int = 0  # torch threads per rank; 0 = SLURM_CPUS_PER_TASK, else cores / ranks on this machine
    protocol: str = "han"  # the evaluation's metric protocol (eval.protocol.PROTOCOLS); what trains is `preset`
    plots: int = 8  # test-split timeline plots at the end
    # at the end: a validation (unless one just ran) and the test-split evaluation of the best
    # checkpoints; off for throughput runs (benchmarks, the GPU check), which then write no best_*.pt
    final_eval: bool = True
    deepspeed_json: str = ""  # a DeepSpeed JSON whose keys override the generated config (e.g. bucket sizes)
    # torch.compile the student's and the teacher's forward (nn.Module.compile: parameters and
    # checkpoints unchanged); the first steps compile, and the throughput leaves them out
    compile: bool = False
    profile: bool = False  # time each section of every step; rank 0 writes profile.json (benchmarks/throughput.py)

    def __post_init__(self):
        if self.zero_stage not in (0, 1, 2):
            raise ValueError(f"zero_stage must be 0, 1 or 2, got {self.zero_stage}")
        for name in ("max_steps", "grad_accum", "keep_checkpoints", "log_every", "max_consecutive_nan"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.lr <= 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError("lr must be positive and min_lr_ratio in [0, 1]")
