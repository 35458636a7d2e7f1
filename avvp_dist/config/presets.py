"""Named presets: what a user names when they say what they trained (`preset: han | coleaf | paper | ours | valor`).

A preset is a nested dict of model, method and optimizer values, common to every dataset
plus a part per dataset (in its module, `DataSpec.presets`); `config.load_config` starts from it and applies the config file
and the command-line overrides on top, so an explicit value always wins. `none` (the
default) is the dataclass defaults as they are. Which part comes from which paper:
docs/method.md. Not to be confused with `train.protocol`, the evaluation's metric protocol.
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Any

from avvp_dist.config.build import build
from avvp_dist.config.train import TrainConfig
from avvp_dist.data.datasets import data_spec
from avvp_dist.method.config import MethodConfig
from avvp_dist.model.config import ModelConfig

SECTIONS = {"model": ModelConfig, "method": MethodConfig, "train": TrainConfig}  # what a preset may set

# HAN (Tian et al., ECCV 2020, AVVP-ECCV20's nets/net_audiovisual.py and main_avvp.py): one
# hybrid-attention layer applied in both directions, d 512, one head, feed-forward 512
_HAN_BACKBONE = {"d_model": 512, "num_layers": 1, "num_heads": 1, "ffn_dim": 512, "dropout": 0.1,
                 "share_layers": True}
# HAN's training: torch.optim.Adam(lr 3e-4), no weight decay, no clipping, StepLR(10 epochs, 0.1)
HAN_OPTIMIZER = {"optimizer": "adam", "adam_beta1": 0.9, "schedule": "step", "lr": 3e-4, "weight_decay": 0.0,
                  "warmup_steps": 0, "grad_clip": 0.0, "lr_step_epochs": 10.0, "lr_step_gamma": 0.1}
# ours: decoupled weight decay, warm-up and cosine, clipping (the library defaults, stated)
_OUR_OPTIMIZER = {"optimizer": "adamw", "adam_beta1": 0.9, "schedule": "warmup_cosine", "lr": 3e-4,
                  "weight_decay": 1e-4, "warmup_steps": 100, "min_lr_ratio": 0.05, "grad_clip": 1.0}
_HAN_WEAK = {"audio_smoothing": 1.0, "visual_smoothing": 0.9}  # HAN's modality-aware label smoothing
_EMA = {"enabled": True, "keep": False, "decay": 0.999, "warmup": True}
# ours: decay 0.99 with the warm-up, a horizon of (10 + k) / 9 steps at update k until it reaches
# 100 steps at step 890. Chosen on the tuning seeds (docs/accuracy.md, "The EMA horizon": LLP
# 0-1, UnAV-100 10-11): against 0.999 with the warm-up (1,000 steps from step 8,990), its teacher
# scored higher on test in 4 of 4 runs and its masks' F1 gain over the student's own was less
# negative in 4 of 4; no schedule made the teacher's masks better than the student's own
_OUR_EMA = {**_EMA, "decay": 0.99}
# ours: per-modality masks with a floor, reliable negatives (absent classes, labelled ones below tau_low)
_OUR_PSEUDO = {"enabled": True, "source": "teacher", "mode": "adaptive", "gamma": 1.0, "tau_min": 0.5,
               "rho": 0.3, "tau_low": 0.3, "absent_negatives": True, "fuse": "none", "weight": 1.0}
# ours: the agreement plus the cross-video InfoNCE, at a small weight
_OUR_CMA = {"enabled": True, "agreement": True, "embedding": "class_aware", "cross_video": True, "temperature": 0.1,
            "nce_weight": 0.5, "weight": 0.1}
_OFF = {"enabled": False}

# CoLeaF (Sardari et al., ECCV 2024; faeghehsardari/coleaf, nets/net_audiovisual.py, option.py,
# main.py): its backbone at its sizes, its weak loss weights (audio 2, visual 1, video 2; HAN's
# smoothing), Adam lr 5e-4 without weight decay, StepLR every 6 epochs x0.25, no clipping
_COLEAF_BACKBONE = {"backbone": "coleaf", "d_model": 512, "num_layers": 1, "num_heads": 1, "ffn_dim": 512,
                    "dropout": 0.1, "share_layers": True, "cross_attention_mix": 0.8, "visual_dropout": 0.5,
                    "evidence_temperature": 0.8}
_COLEAF_WEAK = {**_HAN_WEAK, "video_weight": 2.0, "audio_weight": 2.0, "visual_weight": 1.0}
COLEAF_OPTIMIZER = {"optimizer": "adam", "adam_beta1": 0.9, "schedule": "step", "lr": 5e-4, "weight_decay": 0.0,
                    "warmup_steps": 0, "grad_clip": 0.0, "lr_step_epochs": 6.0, "lr_step_gamma": 0.25}
# the seed paper (arXiv 2509.14097) as its text reads (docs/method.md, the fidelity table): an EMA
# teacher theta_T <- a theta_T + (1 - a) theta_S with no warm-up; masks from the teacher's audio and
# visual probabilities averaged, at an adaptive threshold from the mean confidence (no floor), a BCE
# at the selected positions only; CMA = the mean cosine distance over the pairs where both
# modalities pass their thresholds and the video has the class; total = AVVP + pseudo + CMA
_PAPER_EMA = {"enabled": True, "keep": False, "decay": 0.999, "warmup": False}  # horizon 1,000 steps from step 0
_PAPER_PSEUDO = {"enabled": True, "source": "teacher", "mode": "adaptive", "gamma": 1.0, "tau_min": 0.0,
                 "rho": 0.3, "tau_low": 0.0, "absent_negatives": False, "fuse": "mean", "weight": 1.0}
_PAPER_CMA = {"enabled": True, "agreement": True, "embedding": "class_aware", "cross_video": False, "weight": 1.0}

PRESETS: dict[str, dict[str, dict]] = {
    "han": {  # the weak baseline as HAN publishes it: no teacher, no CMA head
        "common": {"model": {**_HAN_BACKBONE, "embed_dim": 0},
                   "method": {"weak": _HAN_WEAK, "teacher": {**_EMA, "enabled": False}, "pseudo": _OFF,
                              "refine": _OFF, "cma": _OFF},
                   "train": HAN_OPTIMIZER},
    },
    "coleaf": {  # CoLeaF's backbone with its weak loss and optimizer; its training extras left out (docs/method.md)
        "common": {"model": {**_COLEAF_BACKBONE, "embed_dim": 0},
                   "method": {"weak": _COLEAF_WEAK, "teacher": {**_EMA, "enabled": False}, "pseudo": _OFF,
                              "refine": _OFF, "cma": _OFF},
                   "train": COLEAF_OPTIMIZER},
    },
    "paper": {  # arXiv 2509.14097's two parts on CoLeaF's backbone and training, nothing else
        "common": {"model": {**_COLEAF_BACKBONE, "embed_dim": 128},
                   "method": {"weak": _COLEAF_WEAK, "teacher": _PAPER_EMA, "pseudo": _PAPER_PSEUDO, "refine": _OFF,
                              "cma": _PAPER_CMA, "ramp_start": 0, "ramp_steps": 0},
                   "train": COLEAF_OPTIMIZER},
    },
    "ours": {  # frozen from the tuning runs before the held-out study (docs/accuracy.md names the seeds)
        "common": {"model": {**_HAN_BACKBONE, "embed_dim": 128},
                   "method": {"weak": _HAN_WEAK, "teacher": _OUR_EMA, "pseudo": _OUR_PSEUDO, "cma": _OUR_CMA,
                              # modality label refinement by cross-video swap (after Wu & Yang, CVPR 2021)
                              "refine": {"enabled": True, "ratio_visual": 0.3, "ratio_audio": 0.0}},
                   "train": _OUR_OPTIMIZER},
    },
    "valor": {  # VALOR (Lai et al., NeurIPS 2023), scripts/train_valor.sh: external segment labels, no teacher
        "common": {"model": {"d_model": 512, "num_layers": 1, "num_heads": 8, "ffn_dim": 1024, "dropout": 0.1,
                             "share_layers": True, "embed_dim": 0},
                   # VALOR sums one BCE per modality over every (segment, class): weight 2 on our mean over both
                   "method": {"weak": _HAN_WEAK, "teacher": {**_EMA, "enabled": False}, "refine": _OFF, "cma": _OFF,
                              "pseudo": {**_OUR_PSEUDO, "source": "external", "weight": 2.0},
                              "ramp_start": 0, "ramp_steps": 0},
                   "train": {"optimizer": "adamw", "adam_beta1": 0.5, "schedule": "warmup_cosine", "lr": 1e-4,
                             "weight_decay": 1e-3, "min_lr_ratio": 0.01, "grad_clip": 1.0}},
    },
}
NAMES = ("none", *PRESETS)


def preset_values(name: str, dataset: str) -> dict:
    """The nested values preset `name` sets for `dataset`: its common part, then the part the
    dataset's module gives it (`DataSpec.presets`); {} for `none`. A `ValueError` lists the
    known names."""
    if name == "none":
        return {}
    if name not in PRESETS:
        raise ValueError(f"preset {name!r} is not one of {list(NAMES)}")
    return merge_into(merge_into({}, PRESETS[name]["common"]), data_spec(dataset).presets.get(name, {}))


def merge_into(base: dict, extra: dict) -> dict:
    """Deep-merges a fresh copy of `extra` into `base` (in place): nested dicts merge, other
    values replace; no dict of `extra` ends up shared (the presets reuse some)."""
    for k, v in extra.items():
        if isinstance(v, dict):
            if not isinstance(base.get(k), dict):
                base[k] = {}
            merge_into(base[k], v)
        else:
            base[k] = copy.deepcopy(v)
    return base


def _flat(obj: Any, prefix: str) -> dict[str, Any]:
    if dataclasses.is_dataclass(obj):
        out = {}
        for f in dataclasses.fields(obj):
            out.update(_flat(getattr(obj, f.name), f"{prefix}.{f.name}"))
        return out
    return {prefix: obj}


def differences(cfg) -> dict[str, Any]:
    """{dotted key: value} of every model, method and train value of `cfg` (a `RunConfig`)
    that differs from its preset's (or, for `none`, from the defaults)."""
    values = preset_values(cfg.preset, cfg.data.dataset)
    out = {}
    for section, cls in SECTIONS.items():
        ref = _flat(build(cls, values.get(section, {}), section), section)
        now = _flat(getattr(cfg, section), section)
        out.update({k: v for k, v in now.items() if ref.get(k) != v})
    return out
