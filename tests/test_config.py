"""Config: YAML + dotted overrides, strict keys and types."""
import re

import pytest

from avvp_dist.config import ConfigError, RunConfig, load_config, parse_override


def test_yaml_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("run_dir: runs/x\ndata:\n  batch_size: 4\n  dataset: unav100\n")
    cfg = load_config(path, ["data.num_workers=0", "synth.feature_dims={res152: 16}", "seed=3"])
    assert isinstance(cfg, RunConfig)
    assert (cfg.run_dir, cfg.seed, cfg.data.batch_size, cfg.data.num_workers) == ("runs/x", 3, 4, 0)
    assert cfg.data.dataset == "unav100" and cfg.synth.feature_dims == {"res152": 16}


def test_override_overrides_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  batch_size: 4\n")
    assert load_config(path, ["data.batch_size=32"]).data.batch_size == 32


def test_feature_list_builds_dataclasses():
    cfg = load_config(None, ["data.features=[{name: clip, modality: visual, dim: 512, steps: 10}]"])
    (spec,) = cfg.data.feature_specs()
    assert (spec.name, spec.dim, spec.out_steps, spec.file) == ("clip", 512, 10, "{name}/{id}.npy")


@pytest.mark.parametrize("override, names", [
    ("data.batchsize=4", "data.batchsize"),
    ("dat.batch_size=4", "dat"),
    ("data.features=[{name: x, modality: visual, dim: 3, colour: red}]", "data.features[0].colour"),
])
def test_unknown_key_is_named(override, names):
    with pytest.raises(ConfigError, match=re.escape(f"unknown config key '{names}'")):
        load_config(None, [override])


@pytest.mark.parametrize("override, fragment", [
    ("data.batch_size=four", "data.batch_size: expected an integer"),
    ("data.batch_size=2.5", "data.batch_size: expected an integer"),
    ("data.verify_checksums=3", "data.verify_checksums: expected true/false"),
    ("data.on_error=ignore", "data.on_error: 'ignore' is not one of"),
    ("data.batch_size=0", "batch_size must be positive"),
    ("synth.feature_dims=[1, 2]", "synth.feature_dims: expected a mapping"),
])
def test_wrong_type_or_value_is_named(override, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_config(None, [override])


def test_bad_override_syntax_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not of the form"):
        parse_override("data.batch_size")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="mapping at top level"):
        load_config(tmp_path / "list.yaml")


def test_float_field_accepts_int():
    assert load_config(None, ["synth.noise=2"]).synth.noise == 2.0


def test_method_and_model_sections():
    cfg = load_config(None, ["method.pseudo.mode=topk", "method.cma.cross_video=false", "model.d_model=64"])
    assert cfg.method.pseudo.mode == "topk" and not cfg.method.cma.cross_video and cfg.model.d_model == 64
    with pytest.raises(ConfigError, match="method.pseudo.mode: 'median' is not one of"):
        load_config(None, ["method.pseudo.mode=median"])
    with pytest.raises(ConfigError, match="unknown config key 'method.cma.temp'"):
        load_config(None, ["method.cma.temp=0.2"])


def test_scientific_notation_is_a_number():
    """PyYAML (YAML 1.1) reads `2e-3` as a string; a float field takes it, others do not."""
    cfg = load_config(None, ["train.lr=2e-3", "method.teacher.decay=9.99E-1", "train.weight_decay=.5e-4"])
    assert (cfg.train.lr, cfg.method.teacher.decay, cfg.train.weight_decay) == (2e-3, 0.999, 0.5e-4)
    with pytest.raises(ConfigError, match="train.lr: expected a number, got 'fast'"):
        load_config(None, ["train.lr=fast"])
    with pytest.raises(ConfigError, match="train.max_steps: expected an integer"):
        load_config(None, ["train.max_steps=1e3"])


@pytest.mark.parametrize("override, message", [
    # non-finite floats anywhere (YAML's .nan / .inf, a literal that overflows)
    ("train.lr=.nan", "train.lr: nan is not a finite number"),
    ("method.cma.weight=.inf", "method.cma.weight: inf is not a finite number"),
    ("eval.detection.fractions=[0.5, .nan]", r"eval.detection.fractions\[1\]: nan is not a finite number"),
    ("method.pseudo.gamma=1e999", "method.pseudo.gamma: '1e999' is not a finite number"),
    # ranges
    ("method.teacher.decay=1.0", r"method.teacher.decay: 1.0 must lie in \[0, 1\)"),
    ("method.teacher.decay=-0.1", r"method.teacher.decay: -0.1 must lie in \[0, 1\)"),
    ("method.cma.temperature=0", "method.cma.temperature: 0.0 must be > 0"),
    ("method.pseudo.rho=0", r"method.pseudo.rho: 0.0 must lie in \(0, 1\]"),
    ("method.pseudo.rho=1.5", r"method.pseudo.rho: 1.5 must lie in \(0, 1\]"),
    ("method.pseudo.tau_min=1.2", r"method.pseudo.tau_min: 1.2 must lie in \[0, 1\]"),
    ("method.pseudo.tau_low=-0.1", r"method.pseudo.tau_low: -0.1 must lie in \[0, 1\]"),
    ("method.refine.ratio_visual=2", r"method.refine.ratio_visual: 2.0 must lie in \[0, 1\]"),
    ("method.pseudo.weight=-1", "method.pseudo.weight: -1.0 must be >= 0"),
    ("method.cma.weight=-0.1", "method.cma.weight: -0.1 must be >= 0"),
    ("method.cma.nce_weight=-1", "method.cma.nce_weight: -1.0 must be >= 0"),
    ("train.eval_every=-1", "train.eval_every: -1 must be >= 0"),
    ("train.checkpoint_every=-5", "train.checkpoint_every: -5 must be >= 0"),
    ("train.threads=-2", "train.threads: -2 must be >= 0"),
    ("seed=-1", "seed: -1 must be >= 0"),
    # a typo in the protocol is refused at load, not at the first validation
    ("train.protocol=hann", r"train.protocol: 'hann' must be one of \['han', "),
])
def test_each_config_rule_names_key_and_value(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_cma_needs_its_embedding_head():
    with pytest.raises(ConfigError, match="method.cma.enabled: true needs the CMA embedding head, but model.embed_dim is 0"):
        load_config(None, ["model.embed_dim=0"])
    assert load_config(None, ["model.embed_dim=0", "method.cma.enabled=false"]).model.embed_dim == 0
    # the defaults and every shipped config pass
    from pathlib import Path
    for path in sorted((Path(__file__).resolve().parents[1] / "recipes" / "configs").glob("*.yaml")):
        load_config(path)
