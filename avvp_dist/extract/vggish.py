"""VGGish (Hershey et al., ICASSP 2017) as HAN's and UnAV-100's releases used it: the log-mel
front end, the network, the PCA and 8-bit quantisation of its release.

Written from the published parameters and algorithm (tensorflow/models,
`research/audioset/vggish/{vggish_params,mel_features,vggish_postprocess}.py`); the network's
layer layout is the one of the PyTorch port's checkpoints (github.com/harritaylor/torchvggish,
release v0.1: `vggish-10086976.pth`, `vggish_pca_params-970ea276.pth`), which `load_vggish` reads.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from avvp_dist.extract.timing import frame_count

RATE = 16000
WINDOW_S, HOP_S = 0.025, 0.010  # STFT
MEL_BINS, MEL_LOW, MEL_HIGH, LOG_OFFSET = 64, 125.0, 7500.0, 0.01
EXAMPLE_FRAMES = 96  # 0.96 s of STFT frames per example
PCA_DIM, QUANT_MIN, QUANT_MAX = 128, -2.0, 2.0


def frames(x: np.ndarray, window: int, hop: int) -> np.ndarray:
    """(n, window, ...) windows of `x` along axis 0 every `hop`, no padding (n = `frame_count`)."""
    n = frame_count(len(x), window, hop)
    idx = np.arange(window)[None] + hop * np.arange(n)[:, None]
    return x[idx]


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """HTK's mel scale, as VGGish uses it: 1127 ln(1 + f / 700)."""
    return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)


def mel_matrix(fft_bins: int, rate: int = RATE, bands: int = MEL_BINS, low: float = MEL_LOW,
               high: float = MEL_HIGH) -> np.ndarray:
    """(fft_bins, bands) triangles, equally spaced in mel between `low` and `high` Hz, over the
    STFT bins' frequencies 0..rate/2; the DC bin weighs nothing."""
    bins_mel = hz_to_mel(np.linspace(0.0, rate / 2, fft_bins))
    edges = np.linspace(hz_to_mel(low), hz_to_mel(high), bands + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins_mel[:, None] - lower) / (center - lower)
    falling = (upper - bins_mel[:, None]) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0] = 0.0
    return weights


def log_mel_examples(wave: np.ndarray, hop_s: float, rate: int = RATE) -> np.ndarray:
    """(n, 96, 64) float32 log-mel examples of a mono waveform at 16 kHz: periodic-Hann STFT
    magnitudes (25 ms windows every 10 ms, FFT size 512), 64 mel bands 125-7500 Hz,
    log(mel + 0.01), then 96-frame examples every `hop_s` seconds (n = `timing.vggish_rows`)."""
    window, hop = int(round(WINDOW_S * rate)), int(round(HOP_S * rate))
    fft = 2 ** int(np.ceil(np.log2(window)))
    hann = 0.5 - 0.5 * np.cos(2 * np.pi / window * np.arange(window))  # periodic
    spectrum = np.abs(np.fft.rfft(frames(np.asarray(wave, np.float64), window, hop) * hann, fft))
    log_mel = np.log(spectrum @ mel_matrix(fft // 2 + 1, rate) + LOG_OFFSET)
    return frames(log_mel, EXAMPLE_FRAMES, int(round(hop_s / HOP_S))).astype(np.float32)


class VGGish(nn.Module):
    """(N, 1, 96, 64) log-mel examples -> (N, 128) embeddings (before the PCA). Parameter names
    as in the PyTorch port's checkpoint (`features.*`, `embeddings.*`)."""

    def __init__(self):
        super().__init__()
        layers, width = [], 1
        for out, convs in ((64, 1), (128, 1), (256, 2), (512, 2)):
            for _ in range(convs):
                layers += [nn.Conv2d(width, out, 3, padding=1), nn.ReLU(inplace=True)]
                width = out
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.embeddings = nn.Sequential(nn.Linear(512 * 6 * 4, 4096), nn.ReLU(inplace=True),
                                        nn.Linear(4096, 4096), nn.ReLU(inplace=True),
                                        nn.Linear(4096, 128), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (N, 512, 6, 4)
        # the weights came from TensorFlow, which flattens height, width, channels in that order
        return self.embeddings(x.permute(0, 2, 3, 1).flatten(1))


def postprocess(emb: torch.Tensor, pca_matrix: torch.Tensor, pca_means: torch.Tensor,
                rounding: str = "floor") -> torch.Tensor:
    """(N, 128) embeddings -> (N, 128) float32 values 0..255: the AudioSet release's PCA
    (`pca_matrix @ (e - means)`), clipped to [-2, 2] and quantised to 8 bits: `floor` truncates
    as TensorFlow's postprocessor (`astype(np.uint8)`), `round` rounds as the PyTorch port's."""
    pca = (emb.double() - pca_means.double().reshape(1, -1)) @ pca_matrix.double().T
    scaled = (pca.clamp(QUANT_MIN, QUANT_MAX) - QUANT_MIN) * (255.0 / (QUANT_MAX - QUANT_MIN))
    return (scaled.floor() if rounding == "floor" else scaled.round()).float()


class VGGishEncoder(nn.Module):
    """Waveform to rows: `log_mel_examples`, `VGGish`, `postprocess`. `pca`: (matrix, means);
    None keeps the raw 128-d embeddings."""

    def __init__(self, net: VGGish, pca: tuple[torch.Tensor, torch.Tensor] | None):
        super().__init__()
        self.net = net
        self.register_buffer("pca_matrix", pca[0].float() if pca else torch.empty(0), persistent=False)
        self.register_buffer("pca_means", pca[1].float().reshape(-1) if pca else torch.empty(0), persistent=False)

    @torch.no_grad()
    def forward(self, wave: np.ndarray, hop_s: float, rounding: str = "floor") -> np.ndarray:
        device = self.pca_matrix.device
        x = torch.from_numpy(log_mel_examples(wave, hop_s))[:, None].to(device)
        emb = self.net(x)
        if self.pca_matrix.numel():
            emb = postprocess(emb, self.pca_matrix, self.pca_means, rounding)
        return emb.float().cpu().numpy()
