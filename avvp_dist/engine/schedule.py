"""Learning-rate schedules: linear warm-up then cosine decay to a floor; HAN's step decay."""
from __future__ import annotations

import math


def warmup_cosine(step: int, warmup: int, total: int, floor: float) -> float:
    """Multiplier of the base lr at optimizer step `step` (0-based)."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def step_decay(step: int, every: int, gamma: float) -> float:
    """Multiplier of the base lr at optimizer step `step` (0-based): gamma ** (step // every),
    torch's StepLR with `every` in optimizer steps (HAN: every 10 epochs, gamma 0.1)."""
    return gamma ** (step // max(1, every))


def lr_lambda(train, steps_per_epoch: int):
    """The multiplier function of `train.schedule` (a `TrainConfig`), and the step decay's
    interval in optimizer steps (None for the cosine schedule)."""
    if train.schedule == "step":  # after the linear warm-up, if any (HAN has none)
        every = max(1, round(train.lr_step_epochs * steps_per_epoch))
        warm = train.warmup_steps
        return (lambda s: (s + 1) / warm if s < warm else step_decay(s, every, train.lr_step_gamma)), every
    return (lambda s: warmup_cosine(s, train.warmup_steps, train.max_steps, train.min_lr_ratio)), None
