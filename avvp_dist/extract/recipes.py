"""Each published feature set as its publisher made it: which frames or audio, which
preprocessing, which network, how many rows.

A `Recipe` turns one decoded video (`VideoInput`) into the rows of one feature file in the
release's layout (res152: (80, 2048) before the reader pools it to 10 segments). `PLANS` says
which recipe makes each feature of each (dataset, feature set); docs/extract.md lists them
with their sources and what differs from the released files.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from avvp_dist.extract import media
from avvp_dist.extract.encoders import (CLIP_NORM, IMAGENET, KINETICS, center_crop, hugging_face_model, i3d_rgb,
                                        normalize, preprocess, resize, resize_shorter, run_batches, to_float,
                                        torchvision_trunk, vggish_encoder)
from avvp_dist.extract.timing import (ExtractError, clip_groups, even_samples, fit_length, frame_ticks, llp_seconds,
                                      min_vggish_samples, segment_bounds, stack_rows)

FRAME_FPS = 8.0  # HAN's and VALOR's extract_frames.py: `ffmpeg -r 8`
LLP_CLIP_S = 10.0


@dataclass
class VideoInput:
    """One video file, decoded on demand and once: the 8 fps frames over the part a feature set
    covers (`seconds`: LLP's first 10 s; the whole video for UnAV-100) and audio at each rate."""

    path: Path
    clip_s: float | None = None  # None: the whole video
    _cache: dict = field(default_factory=dict, repr=False)

    @functools.cached_property
    def seconds(self) -> float:
        d = media.duration(self.path)
        if self.clip_s is not None:
            return llp_seconds(d, self.clip_s)
        if not d > 0:
            raise ExtractError(f"{self.path}: duration {d}")
        return d

    def frames(self, k: int) -> np.ndarray:
        """(k, H, W, 3) uint8: `even_samples(k)` of the 8 fps frames."""
        if "ticks" not in self._cache:
            n = frame_ticks(self.seconds, FRAME_FPS)
            self._cache["ticks"] = media.frames_at(self.path, np.arange(n), FRAME_FPS)
        ticks = self._cache["ticks"]
        return ticks[even_samples(len(ticks), k)]

    def audio(self, rate: int, sample_format: str) -> np.ndarray:
        """(N,) float32 mono at `rate`, cut to `seconds`."""
        key = ("audio", rate, sample_format)
        if key not in self._cache:
            wave = media.audio(self.path, rate, sample_format)
            self._cache[key] = wave[: int(round(self.seconds * rate))]
        return self._cache[key]


def res152_rows(net, video: VideoInput, device: torch.device) -> np.ndarray:
    """HAN `extract_rgb_feat.py`: 80 frames, pretrainedmodels' transform (shorter side 256,
    centre 224 crop, ImageNet mean/std), ResNet-152 pool features: (80, 2048)."""
    x = preprocess(video.frames(80), lambda b: normalize(center_crop(resize_shorter(b, 256), 224), IMAGENET))
    return run_batches(net, x, device)


def r2plus1d_rows(net, video: VideoInput, device: torch.device) -> np.ndarray:
    """HAN `extract_3D_feat.py`: the same 80 frames resized to 112 x 112, Kinetics mean/std, in
    10 clips of 8 consecutive frames, R(2+1)D-18 pool features: (10, 512)."""
    x = preprocess(video.frames(80), lambda b: normalize(resize(b, (112, 112)), KINETICS))
    clips = x[torch.from_numpy(clip_groups(80, 8))].permute(0, 2, 1, 3, 4)  # (10, 3, 8, 112, 112)
    return run_batches(net, clips, device, batch=10)


def vggish_rows(net, video: VideoInput, device: torch.device, hop_s: float, pad_s: float | None,
                rounding: str = "floor") -> np.ndarray:
    """VGGish examples every `hop_s` of the 16 kHz audio (through 16-bit samples, as HAN's WAV),
    after the PCA and 8-bit quantisation: LLP 0.96 s on the first 10 s, zero-padded to 10 s
    (10 rows), truncated as TensorFlow's VGGish (HAN's); UnAV-100 0.32 s on the whole video
    (its issue #7), rounded as video_features' PyTorch VGGish (UnAV's)."""
    wave = video.audio(16000, "s16")
    if pad_s is not None:
        wave = fit_length(wave, int(round(pad_s * 16000)))
    if len(wave) < min_vggish_samples():
        raise ExtractError(f"{video.path}: too short: {len(wave) / 16000:.2f} s of audio, VGGish needs "
                           f"{min_vggish_samples() / 16000:.3f} s")
    return net.to(device)(wave, hop_s, rounding)


def clip_rows(model, video: VideoInput, device: torch.device) -> np.ndarray:
    """VALOR `clip_preprocess.py`: 10 of the 8 fps frames, resized to 224 x 224 (no crop), CLIP
    mean/std, CLIP ViT-L/14 image features (the projection, not normalised): (10, 768)."""
    x = preprocess(video.frames(10), lambda b: normalize(resize(b, (224, 224)), CLIP_NORM))
    return run_batches(lambda b: model(pixel_values=b).image_embeds, x, device)


def rgb_rows(net, video: VideoInput, device: torch.device, fps: float = 25.0, stack: int = 24, step: int = 8,
             batch: int = 4) -> np.ndarray:
    """video_features' I3D RGB stream as UnAV-100 ran it (25 fps, stacks of 24 frames every 8,
    `libs/core/config.py`'s num_frames and feat_stride): each frame's shorter side to 256,
    the central 224 x 224 (offsets rounded down), scaled to [-1, 1]; (stack_rows, 1024)."""
    ticks = frame_ticks(video.seconds, fps)
    if stack_rows(ticks, stack, step) == 0:
        raise ExtractError(f"{video.path}: too short: {ticks} frames at {fps:g} fps, I3D needs {stack + 1}")
    window, stacks, rows = [], [], []
    for _, frame in media.iter_ticks(video.path, fps, ticks):
        x = to_float(frame.to_ndarray(format="rgb24")[None])
        window.append(center_crop(resize_shorter(x, 256), 224, floor=True)[0] * 2 - 1)
        if len(window) == stack + 1:
            stacks.append(torch.stack(window[:stack], 1))  # (3, 24, 224, 224)
            window = window[step:]
        if len(stacks) == batch:
            rows.append(run_batches(net, torch.stack(stacks), device, batch))
            stacks = []
    if stacks:
        rows.append(run_batches(net, torch.stack(stacks), device, batch))
    return np.concatenate(rows)


@functools.lru_cache(maxsize=1)
def clap_features():
    """transformers' CLAP front end (48 kHz, 64 mel bands, 1024-sample windows every 480, 50 to
    14,000 Hz, 10 s inputs), the defaults of LAION's HTSAT fusion model."""
    from transformers import ClapFeatureExtractor

    return ClapFeatureExtractor()


def clap_rows(model, video: VideoInput, device: torch.device) -> np.ndarray:
    """VALOR `clap_preprocess.py` (`get_audio_embedding`): the 48 kHz audio cut into 10 segments
    (`timing.segment_bounds`), each repeat-padded to 10 s with fusion inputs, CLAP audio
    embeddings, L2-normalised as laion_clap returns them: (10, 512)."""
    wave = video.audio(48000, "flt")
    segments = [wave[a:b] for a, b in segment_bounds(len(wave), 10)]
    inputs = clap_features()(segments, sampling_rate=48000, truncation="fusion", padding="repeatpad",
                             return_tensors="pt")
    # transformers marks one input of a batch with none longer than 10 s as longer, at random (a
    # training device); laion_clap's inference marks only inputs that are longer
    inputs["is_longer"] = torch.tensor([[len(s) > 10 * 48000] for s in segments])
    with torch.no_grad():
        emb = model(**{k: v.to(device) for k, v in inputs.items()}).audio_embeds
    return F.normalize(emb.float(), dim=-1).cpu().numpy()


@dataclass(frozen=True)
class Recipe:
    network: str  # a key of LOADERS
    rows: Callable  # (network, VideoInput, device) -> (T, D) float32


# the networks, loaded once per process; tests put small stand-ins of the same interface here
LOADERS: dict[str, Callable[[], torch.nn.Module]] = {
    "resnet152": functools.partial(torchvision_trunk, "resnet152"),
    "r2plus1d_18": functools.partial(torchvision_trunk, "r2plus1d_18"),
    "vggish": vggish_encoder,
    "clip": functools.partial(hugging_face_model, "clip"),
    "clap": functools.partial(hugging_face_model, "clap"),
    "i3d_rgb": i3d_rgb,
}
_HAN = {"res152": Recipe("resnet152", res152_rows), "r2plus1d_18": Recipe("r2plus1d_18", r2plus1d_rows),
        "vggish": Recipe("vggish", functools.partial(vggish_rows, hop_s=0.96, pad_s=LLP_CLIP_S))}
# (dataset, feature set) -> (seconds of video covered, {feature: recipe}); UnAV-100's I3D flow
# (RAFT optical flow) has no extractor here (docs/extract.md)
PLANS: dict[tuple[str, str], tuple[float | None, dict[str, Recipe]]] = {
    ("llp", "han"): (LLP_CLIP_S, _HAN),
    ("llp", "valor_han"): (LLP_CLIP_S, _HAN),
    ("llp", "valor"): (LLP_CLIP_S, {"clap": Recipe("clap", clap_rows), "clip": Recipe("clip", clip_rows),
                                    "r2plus1d_18": _HAN["r2plus1d_18"]}),
    ("unav100", "unav100"): (None, {"vggish": Recipe("vggish", functools.partial(vggish_rows, hop_s=0.32, pad_s=None,
                                                                                 rounding="round")),
                                    "rgb": Recipe("i3d_rgb", rgb_rows)}),
}


def plan(dataset: str, feature_set: str | None, names: list[str]) -> tuple[float | None, dict[str, Recipe]]:
    """(seconds covered, recipes) for the features `names` of `dataset`: of its `feature_set`,
    or with None of the first of its feature sets that has them all (a checkpoint names its
    features, not its set). Anything else is an `ExtractError` naming what is missing."""
    keys = [(dataset, feature_set)] if feature_set is not None else [k for k in PLANS if k[0] == dataset]
    for key in keys:
        if key in PLANS and all(n in PLANS[key][1] for n in names):
            return PLANS[key]
    where = f"{dataset}/{feature_set}" if feature_set is not None else dataset
    known = {f"{d}/{s}": sorted(r) for (d, s), (_, r) in PLANS.items() if d == dataset}
    raise ExtractError(f"no extractor for features {names} of {where} (docs/extract.md); extractable: {known}")
