"""`RunConfig`: the components' config dataclasses composed into one run; YAML + dotted overrides.

Each component owns its dataclass next to its code (`DataConfig` in `data/`, `ModelConfig`
in `model/`, `MethodConfig` in `method/`, ...); the run-level sections live in this package
(`TrainConfig` in `config/train.py`, the presets in `config/presets.py`). Loading starts
from the named preset, applies the YAML file and the dotted overrides, and checks the
result (`build`, then the ranges in `RULES` and the rules across sections): a
`ConfigError` naming the dotted key and the value, raised before any work starts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from avvp_dist.config.build import ConfigError, build
from avvp_dist.config.presets import NAMES as PRESET_NAMES, differences, merge_into, preset_values
from avvp_dist.config.train import TrainConfig
from avvp_dist.data.config import DataConfig
from avvp_dist.data.synth import SynthConfig
from avvp_dist.eval.config import EvalConfig
from avvp_dist.eval.protocol import PROTOCOLS
from avvp_dist.method.config import MethodConfig
from avvp_dist.model.config import ModelConfig


@dataclass
class RunConfig:
    """One run: what every entry point (CLI, recipes, launchers) reads."""

    data: DataConfig = field(default_factory=DataConfig)
    synth: SynthConfig = field(default_factory=SynthConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    # what runs (`config.presets`, docs/method.md): han | paper | ours | valor, or none (the
    # defaults below); it sets model, method and optimizer values, which the config file and
    # the command line then override
    preset: str = "none"
    run_dir: str = "runs/demo"  # everything a run writes goes under here
    seed: int = 0  # one seed for data order, init and synthetic data
    # {dotted key: value} of every model / method / train value that differs from the preset's,
    # filled by `load_config` and recorded in run.json and the reports
    preset_overrides: dict = field(default_factory=dict, init=False)
    # {dotted key: where its value was set}: the config file's path or "command line" (the
    # preset and the defaults are not listed); filled by `load_config`
    sources: dict = field(default_factory=dict, init=False)


def _in(lo: float, hi: float, closed_lo: bool = True, closed_hi: bool = True):
    def ok(v):
        return (lo <= v if closed_lo else lo < v) and (v <= hi if closed_hi else v < hi)
    return ok, f"must lie in {'[' if closed_lo else '('}{lo}, {hi}{']' if closed_hi else ')'}"


_AT_LEAST_0 = (lambda v: v >= 0, "must be >= 0")
_POSITIVE = (lambda v: v > 0, "must be > 0")
_UNIT = _in(0, 1)
# dotted key -> (check, what it requires): ranges the component dataclasses leave open
RULES = {
    "method.teacher.decay": _in(0, 1, closed_hi=False),
    "method.cma.temperature": _POSITIVE,
    "method.pseudo.rho": _in(0, 1, closed_lo=False),
    "method.pseudo.gamma": _POSITIVE,
    **{f"method.{k}": _UNIT for k in ("pseudo.tau_min", "pseudo.tau_low", "refine.ratio_visual", "refine.ratio_audio",
                                      "weak.audio_smoothing", "weak.visual_smoothing")},  # thresholds, label values
    **{f"method.{k}": _AT_LEAST_0 for k in ("pseudo.weight", "cma.weight", "cma.nce_weight",  # loss weights
                                            "weak.video_weight", "weak.audio_weight", "weak.visual_weight",
                                            "ramp_start", "ramp_steps")},
    **{f"train.{k}": _AT_LEAST_0 for k in ("eval_every", "checkpoint_every", "threads", "warmup_steps",
                                           "weight_decay", "grad_clip", "plots", "epochs", "global_batch")},
    "train.dist_timeout_s": _POSITIVE,
    "train.adam_beta1": _in(0, 1, closed_hi=False),
    "train.lr_step_epochs": _POSITIVE,
    "train.lr_step_gamma": _in(0, 1, closed_lo=False),
    "train.protocol": (lambda v: v in PROTOCOLS, f"must be one of {sorted(PROTOCOLS)} (a metric protocol; "
                       f"what trains is named by `preset`)"),
    "preset": (lambda v: v in PRESET_NAMES, f"must be one of {list(PRESET_NAMES)}"),
    "seed": _AT_LEAST_0,
}


def _get(cfg: Any, key: str) -> Any:
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return cfg


def validate(cfg: RunConfig) -> RunConfig:
    """`RULES`, then the rules across sections; a `ConfigError` naming the key and the value."""
    for key, (ok, requirement) in RULES.items():
        value = _get(cfg, key)
        if not ok(value):
            raise ConfigError(f"{key}: {value!r} {requirement}")
    cma = cfg.method.cma
    if cma.enabled and cma.embedding == "class_aware" and cfg.model.embed_dim == 0:
        raise ConfigError("method.cma.enabled: true needs the CMA embedding head, but model.embed_dim is 0 "
                          "(set model.embed_dim > 0, method.cma.embedding=segment, or method.cma.enabled=false)")
    if cfg.train.global_batch and cfg.train.grad_accum != 1:
        raise ConfigError(f"train.grad_accum: {cfg.train.grad_accum} with train.global_batch {cfg.train.global_batch}: "
                          "the accumulation follows from the global batch and data.batch_size (the most one rank "
                          "holds at once); set one of them (train.grad_accum=1, or train.global_batch=0)")
    if cfg.method.refine.enabled and cfg.model.backbone != "han":
        raise ConfigError(f"method.refine.enabled: true runs HAN's encoder on swapped tracks, but model.backbone is "
                          f"{cfg.model.backbone!r} (set method.refine.enabled=false, or model.backbone=han)")
    return cfg


def parse_override(text: str) -> tuple[list[str], Any]:
    """`'data.batch_size=8'` -> (['data', 'batch_size'], 8); values are parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key.sub=value")
    key, raw = text.split("=", 1)
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r} has an empty key part")
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({e})") from e
    return key.split("."), value


def merge(base: dict, path: list[str], value: Any) -> None:
    """Sets `base[path[0]]...[path[-1]] = value`, creating nested dicts."""
    node = base
    for part in path[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = node[part] = {}
        node = nxt
    node[path[-1]] = value


def leaves(values: dict, prefix: str = "") -> list[str]:
    """The dotted keys of the values in a nested dict, `{"a": {"b": 1}}` -> ["a.b"]."""
    out = []
    for k, v in values.items():
        out += leaves(v, f"{prefix}{k}.") if isinstance(v, dict) and v else [f"{prefix}{k}"]
    return out


def load_config(path: str | Path | None = None, overrides: list[str] = (), cls: type = RunConfig) -> Any:
    """Loads YAML (if given), applies dotted overrides, and builds a checked config; a
    `RunConfig` records where each value was set (`sources`)."""
    values: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {path} is not valid YAML: {e}") from e
        if not isinstance(values, dict):
            raise ConfigError(f"config file {path} must hold a mapping at top level")
    sources = dict.fromkeys(leaves(values), str(path))
    for text in overrides:
        keys, value = parse_override(text)
        merge(values, keys, value)
        sources[".".join(keys)] = "command line"
    if cls is not RunConfig:
        return build(cls, values)
    return with_preset(values, sources)


def _one_length(cfg: RunConfig) -> None:
    """`train.epochs` and `train.max_steps` both set: the command line's replaces the file's;
    set by the same source, an error."""
    by_epochs, by_steps = cfg.sources.get("train.epochs"), cfg.sources.get("train.max_steps")
    if cfg.train.epochs > 0 and by_steps is not None:
        if by_epochs == by_steps:
            raise ConfigError(f"train.epochs ({cfg.train.epochs}) and train.max_steps ({cfg.train.max_steps}) are both "
                              f"set by {by_steps}: a run's length is one of them")
        if by_steps == "command line":
            cfg.train.epochs = 0.0


def with_preset(values: dict, sources: dict | None = None) -> RunConfig:
    """A checked `RunConfig` from nested `values` (a config file with its overrides applied):
    the values of `values['preset']` first, then `values` over them; records what differs
    from the preset, and where each value was set (`sources`: {dotted key: file or "command line"})."""
    name = values.get("preset", "none")
    if name not in PRESET_NAMES:
        raise ConfigError(f"preset: {name!r} must be one of {list(PRESET_NAMES)}")
    dataset = (values.get("data") or {}).get("dataset", DataConfig.dataset)
    cfg = build(RunConfig, merge_into(preset_values(name, dataset), values))
    cfg.sources = dict(sources or {})
    _one_length(cfg)
    cfg = validate(cfg)
    cfg.preset_overrides = differences(cfg)
    return cfg
