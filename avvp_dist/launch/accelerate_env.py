"""`accelerate launch` as a launcher: its processes, precision and ZeRO stage become config overrides.

accelerate starts the processes (torchrun-style RANK / WORLD_SIZE / MASTER_*); we read
what its config file and flags decided from the environment it sets and train with our
own DeepSpeed engine. No `Accelerator` object is created: one engine, one checkpoint format.
"""
from __future__ import annotations

import os

from avvp_dist.launch.entry import train_command

PRECISION = {"no": "fp32", "bf16": "bf16", "fp16": "fp16"}


def accelerate_overrides(env: dict | None = None) -> list[str]:
    """Dotted overrides from ACCELERATE_* variables (empty when not launched by accelerate)."""
    env = os.environ if env is None else env
    out = []
    if env.get("ACCELERATE_MIXED_PRECISION"):
        mp = env["ACCELERATE_MIXED_PRECISION"].lower()
        if mp not in PRECISION:
            raise ValueError(f"accelerate mixed_precision {mp!r} is not one of {sorted(PRECISION)}")
        out.append(f"train.precision={PRECISION[mp]}")
    if env.get("ACCELERATE_DEEPSPEED_ZERO_STAGE"):
        out.append(f"train.zero_stage={int(env['ACCELERATE_DEEPSPEED_ZERO_STAGE'])}")
    if env.get("ACCELERATE_GRADIENT_ACCUMULATION_STEPS"):
        out.append(f"train.grad_accum={int(env['ACCELERATE_GRADIENT_ACCUMULATION_STEPS'])}")
    return out


def run_recipe(default_config: str, argv: list[str]) -> int:
    """Entry of `recipes/*.py`: `[--config FILE] [overrides...]`, accelerate's choices applied first."""
    config = default_config
    if argv[:1] == ["--config"]:
        config, argv = argv[1], argv[2:]
    return train_command(config, [*accelerate_overrides(), *argv])
