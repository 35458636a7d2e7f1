"""`avvp-dist ARGS` with the extraction networks replaced by networks of the same interface that
need no download: VGGish, I3D, CLIP and CLAP are real architectures (ours and transformers')
with random weights (tests/test_extract_weights.py), small where the library allows; here VGGish
is, CLIP and CLAP are tiny configurations of transformers' classes, and I3D and torchvision's
ResNet-152 and R(2+1)D-18 (which do not import beside this machine's CPU torch) are small
stand-ins that take and give the same shapes. Every process builds the same weights (fixed seeds), so ranks agree.

    torchrun ... tests/extract_stand_ins.py extract --videos V --out F ...
    install()  # in a test process
"""
import sys

import torch
from torch import nn

from avvp_dist.extract import recipes
from avvp_dist.extract.vggish import VGGish, VGGishEncoder

INPUTS: dict[str, list] = {}  # network -> the inputs it was given (recording on)


class Trunk(nn.Module):
    """(N, *shape) -> (N, dim): average pooling to a few cells, then a fixed linear map."""

    def __init__(self, name: str, shape: tuple, dim: int, cells: tuple):
        super().__init__()
        self.name, self.shape, self.cells = name, shape, cells
        torch.manual_seed(len(name))
        self.proj = nn.Linear(3 * int(torch.tensor(cells).prod()), dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert tuple(x.shape[1:]) == self.shape, f"{self.name}: input {tuple(x.shape)}, expected (N, {self.shape})"
        INPUTS.setdefault(self.name, []).append(x.detach().cpu())
        pool = nn.functional.adaptive_avg_pool3d if x.dim() == 5 else nn.functional.adaptive_avg_pool2d
        return self.proj(pool(x, self.cells).flatten(1))


def vggish() -> VGGishEncoder:
    torch.manual_seed(1)
    q, _ = torch.linalg.qr(torch.randn(128, 128))
    return VGGishEncoder(VGGish(), (q, torch.zeros(128)))


def clip():
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(2)
    return CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=224,
        patch_size=14, projection_dim=768))


class RecordingClap(nn.Module):
    """transformers' CLAP audio model (tiny, random), recording its inputs."""

    def __init__(self):
        super().__init__()
        from transformers import ClapAudioConfig, ClapAudioModelWithProjection

        torch.manual_seed(3)
        self.model = ClapAudioModelWithProjection(ClapAudioConfig(
            depths=[1, 1, 1, 1], patch_embeds_hidden_size=16, hidden_size=128, num_attention_heads=[2, 2, 2, 2],
            projection_dim=512, enable_fusion=True))

    def forward(self, **inputs):
        INPUTS.setdefault("clap", []).append({k: v.detach().cpu() for k, v in inputs.items()})
        return self.model(**inputs)


STAND_INS = {
    "resnet152": lambda: Trunk("resnet152", (3, 224, 224), 2048, (4, 4)),
    "r2plus1d_18": lambda: Trunk("r2plus1d_18", (3, 8, 112, 112), 512, (2, 2, 2)),
    "vggish": vggish,
    "clip": clip,
    "clap": RecordingClap,
    "i3d_rgb": lambda: Trunk("i3d_rgb", (3, 24, 224, 224), 1024, (2, 2, 2)),
}


def install() -> None:
    recipes.LOADERS.update(STAND_INS)


if __name__ == "__main__":
    from avvp_dist.cli import main

    install()
    sys.exit(main(sys.argv[1:]))
