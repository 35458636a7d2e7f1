"""A small, fixed model + teacher + batch shared by the single- and multi-process method tests."""
from __future__ import annotations

import os

import torch

from avvp_dist.method.config import MethodConfig
from avvp_dist.method.ema import EMATeacher
from avvp_dist.model.config import ModelConfig
from avvp_dist.model.model import AVVPModel

FEATURES = [{"name": "vggish", "modality": "audio", "dim": 12}, {"name": "res152", "modality": "visual", "dim": 10},
            {"name": "r2plus1d_18", "modality": "visual", "dim": 6}]
C, T = 6, 10


def build(seed: int, videos: int, unlabelled_first_half: bool = False):
    """(model, teacher, full batch, method config): dropout 0, fp32, a teacher that differs from the student."""
    torch.manual_seed(seed)
    model = AVVPModel(FEATURES, C, ModelConfig(d_model=16, num_heads=2, ffn_dim=24, dropout=0.0, embed_dim=8, num_layers=2))
    teacher = EMATeacher(model)
    if os.environ.get("AVVP_TEST_COMPILE") == "1":  # as train.compile does (train_helpers.COMPILE)
        model.compile()
        teacher.module.compile()
    with torch.no_grad():
        for p in teacher.module.parameters():
            p.add_(0.3 * torch.randn_like(p))
    g = torch.Generator().manual_seed(seed + 1)
    x = {f["name"]: torch.randn(videos, T, f["dim"], generator=g) for f in FEATURES}
    lengths = torch.randint(4, T + 1, (videos,), generator=g)
    lengths[0] = T
    mask = torch.arange(T)[None, :] < lengths[:, None]
    y = (torch.rand(videos, C, generator=g) < 0.5).float()
    y[:, 0] = 1.0
    if unlabelled_first_half:  # rank 0 of 2 then has no positives and no CMA pairs at all
        y[: videos // 2] = 0.0
    # plant class 0 in the features so the teacher finds pairs in both modalities
    for f in FEATURES:
        x[f["name"]][:, :5] += 1.5
    cfg = MethodConfig()
    cfg.cma.enabled = True  # every term of the method, whatever the defaults
    cfg.pseudo.tau_min, cfg.pseudo.gamma, cfg.pseudo.tau_low = 0.3, 1.0, 0.2
    return model, teacher, (x, mask, y), cfg


def local_slice(batch, rank: int, world: int):
    x, mask, y = batch
    n = mask.shape[0] // world
    sl = slice(rank * n, (rank + 1) * n)
    return {k: v[sl] for k, v in x.items()}, mask[sl], y[sl]
