"""The run's configuration: `RunConfig` (every component's section), the named presets, loading and checks.

    from avvp_dist.config import load_config
    cfg = load_config("recipes/configs/llp.yaml", ["preset=paper", "data.batch_size=8"])
"""
from avvp_dist.config.build import ConfigError, build
from avvp_dist.config.run import RULES, RunConfig, load_config, merge, parse_override, validate, with_preset
from avvp_dist.config.train import TrainConfig

__all__ = ["ConfigError", "RULES", "RunConfig", "TrainConfig", "build", "load_config", "merge", "parse_override",
           "validate", "with_preset"]
