"""TrainState: everything a run resumes from besides what DeepSpeed saves (model, optimizer, scheduler)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

FORMAT = "avvp_dist-train/2"  # 2: counters in one TrainState; checkpoints of format 1 are refused


@dataclass
class TrainState:
    """The run's counters, the best validation score so far, and references to the stateful
    parts a checkpoint must hold: the EMA teacher (the same on every rank) and this rank's
    position in the data stream. One counter per meaning:

    step: optimizer steps applied (an fp16 overflow step is not): the lr schedule, the EMA,
        the method's ramp, logging, validation and checkpoints follow it.
    micro_step: micro-batches drawn from the stream, finite loss or not.
    nan_skips: micro-batches skipped for a non-finite loss, in all.
    consecutive_nan: non-finite losses in a row now; not saved, a resumed run counts afresh.
    """

    stream: object  # data.stream.ShardStream (state_dict / load_state_dict)
    teacher: object | None = None  # method.ema.EMATeacher
    step: int = 0
    micro_step: int = 0
    nan_skips: int = 0
    consecutive_nan: int = 0
    best: dict = field(default_factory=lambda: {"score": -math.inf, "step": None})

    @property
    def accumulated(self) -> int:
        """Micro-batches whose gradient went into an optimizer step (or the one being accumulated)."""
        return self.micro_step - self.nan_skips

    def state_dict(self) -> dict:
        """The part every rank shares (saved once, in DeepSpeed's client state)."""
        return {"format": FORMAT, "step": self.step, "micro_step": self.micro_step, "nan_skips": self.nan_skips,
                "best": dict(self.best), "teacher": self.teacher.state_dict() if self.teacher is not None else None}

    def rank_state_dict(self) -> dict:
        """This rank's part: stream position and RNG state (tensors and plain values only)."""
        return {"stream": self.stream.state_dict(), "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state() if torch.cuda.is_available() else None}

    def load_state_dict(self, shared: dict, rank: dict, source: str = "checkpoint") -> None:
        if not isinstance(shared, dict) or shared.get("format") != FORMAT:
            found = shared.get("format", "1 (written before avvp_dist-train/2)") if isinstance(shared, dict) else None
            raise ValueError(f"{source}: training-state format {found!r}, this version reads {FORMAT!r}; "
                             "resume it with the avvp_dist version that wrote it, or start a fresh run")
        self.step, self.micro_step, self.nan_skips = shared["step"], shared["micro_step"], shared["nan_skips"]
        self.best = dict(shared["best"])
        if self.teacher is not None:
            if shared["teacher"] is None:
                raise ValueError(f"{source}: has no EMA teacher, but this run's method needs one")
            self.teacher.load_state_dict(shared["teacher"])
        self.stream.load_state_dict(rank["stream"])
        torch.set_rng_state(rank["torch_rng"])
        if rank.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state(rank["cuda_rng"])
