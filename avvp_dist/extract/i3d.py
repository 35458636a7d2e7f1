"""Inflated Inception-V1 (I3D; Carreira and Zisserman, CVPR 2017), RGB stream, as UnAV-100's
features were extracted with it: github.com/v-iashin/video_features (`models/i3d`), whose
PyTorch weights come from github.com/hassony2/kinetics_i3d_pytorch (`model_rgb.pth`, there
`models/i3d/checkpoints/i3d_rgb.pt`).

Parameter names follow that checkpoint (`conv3d_1a_7x7.conv3d.weight`, `mixed_3b.branch_1.1.batch3d.*`).
Convolutions and max-pools pad as TensorFlow's SAME does (the weights came from TensorFlow):
max(k - s, 0) in all, the odd one at the end; pools pad with zeros and round up.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Inception blocks: (input channels, [1x1, 3x3 reduce, 3x3, 3x3 reduce, 3x3, pool proj])
MIXED = {
    "3b": (192, [64, 96, 128, 16, 32, 32]), "3c": (256, [128, 128, 192, 32, 96, 64]),
    "4b": (480, [192, 96, 208, 16, 48, 64]), "4c": (512, [160, 112, 224, 24, 64, 64]),
    "4d": (512, [128, 128, 256, 24, 64, 64]), "4e": (512, [112, 144, 288, 32, 64, 64]),
    "4f": (528, [256, 160, 320, 32, 128, 128]), "5b": (832, [256, 160, 320, 32, 128, 128]),
    "5c": (832, [384, 192, 384, 48, 128, 128]),
}


def same_padding(kernel: tuple, stride: tuple) -> tuple:
    """F.pad's argument (W, H, then T; each start, end) for TensorFlow's SAME padding."""
    pads = []
    for k, s in zip(reversed(kernel), reversed(stride)):
        total = max(k - s, 0)
        pads += [total // 2, total - total // 2]
    return tuple(pads)


class Unit3D(nn.Module):
    """SAME-padded 3D convolution, batch norm, ReLU."""

    def __init__(self, cin: int, cout: int, kernel=(1, 1, 1), stride=(1, 1, 1)):
        super().__init__()
        self.pad = same_padding(kernel, stride)
        self.conv3d = nn.Conv3d(cin, cout, kernel, stride=stride, bias=False)
        self.batch3d = nn.BatchNorm3d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.batch3d(self.conv3d(F.pad(x, self.pad))))


class MaxPoolSame(nn.Module):
    def __init__(self, kernel: tuple, stride: tuple):
        super().__init__()
        self.pad, self.kernel, self.stride = same_padding(kernel, stride), kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(F.pad(x, self.pad), self.kernel, self.stride, ceil_mode=True)


class Mixed(nn.Module):
    """An Inception block: 1x1; 1x1 then 3x3x3; 1x1 then 3x3x3; max-pool then 1x1; concatenated."""

    def __init__(self, cin: int, c: list[int]):
        super().__init__()
        self.branch_0 = Unit3D(cin, c[0])
        self.branch_1 = nn.Sequential(Unit3D(cin, c[1]), Unit3D(c[1], c[2], (3, 3, 3)))
        self.branch_2 = nn.Sequential(Unit3D(cin, c[3]), Unit3D(c[3], c[4], (3, 3, 3)))
        self.branch_3 = nn.Sequential(MaxPoolSame((3, 3, 3), (1, 1, 1)), Unit3D(cin, c[5]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch_0(x), self.branch_1(x), self.branch_2(x), self.branch_3(x)], 1)


class I3D(nn.Module):
    """(N, 3, T, 224, 224) RGB in [-1, 1] -> (N, 1024): the features video_features takes
    (`features=True`): Mixed_5c, average-pooled over 2 x 7 x 7 windows, then over time."""

    def __init__(self, num_classes: int = 400):
        super().__init__()
        self.conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2))
        self.maxPool3d_2a_3x3 = MaxPoolSame((1, 3, 3), (1, 2, 2))
        self.conv3d_2b_1x1 = Unit3D(64, 64)
        self.conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        self.maxPool3d_3a_3x3 = MaxPoolSame((1, 3, 3), (1, 2, 2))
        self.maxPool3d_4a_3x3 = MaxPoolSame((3, 3, 3), (2, 2, 2))
        self.maxPool3d_5a_2x2 = MaxPoolSame((2, 2, 2), (2, 2, 2))
        for name, (cin, c) in MIXED.items():
            setattr(self, f"mixed_{name}", Mixed(cin, c))
        self.conv3d_0c_1x1 = nn.Module()  # the Kinetics classifier: in the checkpoint, unused here
        self.conv3d_0c_1x1.conv3d = nn.Conv3d(1024, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxPool3d_2a_3x3(self.conv3d_1a_7x7(x))
        x = self.maxPool3d_3a_3x3(self.conv3d_2c_3x3(self.conv3d_2b_1x1(x)))
        x = self.maxPool3d_4a_3x3(self.mixed_3c(self.mixed_3b(x)))
        for name in ("4b", "4c", "4d", "4e", "4f"):
            x = getattr(self, f"mixed_{name}")(x)
        x = self.mixed_5c(self.mixed_5b(self.maxPool3d_5a_2x2(x)))
        x = F.avg_pool3d(x, (2, 7, 7), stride=1)  # (N, 1024, T', 1, 1)
        return x.flatten(2).mean(2)
