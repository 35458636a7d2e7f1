"""The DeepSpeed config of a run: batch sizes, ZeRO stage, precision, clipping."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from avvp_dist.config import ConfigError
from avvp_dist.config.train import TrainConfig


def resolve_precision(requested: str) -> str:
    """auto: bf16 on GPUs that support it, fp16 (dynamic loss scaling) on other GPUs, fp32 on CPU."""
    if requested != "auto":
        if requested == "fp16" and not torch.cuda.is_available():
            raise ValueError("precision fp16 needs a GPU (DeepSpeed refuses fp16 on CPU)")
        return requested
    if not torch.cuda.is_available():
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def deepspeed_config(train: TrainConfig, micro_batch: int, world_size: int, precision: str) -> dict:
    cfg = {
        "train_micro_batch_size_per_gpu": micro_batch,
        "gradient_accumulation_steps": train.grad_accum,
        "train_batch_size": micro_batch * train.grad_accum * world_size,
        "gradient_clipping": train.grad_clip,
        "zero_optimization": {"stage": train.zero_stage},
        "steps_per_print": 10**9,  # our logger reports; keep DeepSpeed quiet
        "wall_clock_breakdown": False,
    }
    if precision == "bf16" and train.zero_stage == 0:
        # fp32 weights and torch's autocast around the forward: the client's AdamW steps as it is.
        # DeepSpeed's "bf16" at ZeRO 0 wraps a client optimizer in FP16_UnfusedOptimizer, whose
        # overflow check reads every parameter's gradient norm on the host (one sync each)
        cfg["torch_autocast"] = {"enabled": True, "dtype": "bfloat16"}
    elif precision == "bf16":  # ZeRO 1/2: bf16 weights in DeepSpeed's flat groups, one overflow check
        cfg["bf16"] = {"enabled": True}
    elif precision == "fp16":  # dynamic loss scaling; at ZeRO 0 the per-parameter overflow check remains
        cfg["fp16"] = {"enabled": True, "loss_scale": 0, "initial_scale_power": 16, "loss_scale_window": 1000,
                       "hysteresis": 2, "min_loss_scale": 1}
    if train.deepspeed_json:
        cfg = _merge(cfg, _overrides_file(Path(train.deepspeed_json)))
    return cfg


def _overrides_file(path: Path) -> dict:
    """`train.deepspeed_json`: a JSON object whose keys override the generated config."""
    try:
        extra = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"train.deepspeed_json: {path} does not exist") from None
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"train.deepspeed_json: {path} cannot be read as JSON ({e})") from None
    if not isinstance(extra, dict):
        raise ConfigError(f"train.deepspeed_json: {path} holds a {type(extra).__name__}, not a JSON object")
    return extra


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
