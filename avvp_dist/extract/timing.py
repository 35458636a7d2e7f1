"""What the publishers' preprocessing decides, as pure functions: frame times, frame samples,
clip groups, audio windows, segment boundaries, the trim and padding rules.

Sources (each function names its own): HAN's scripts (github.com/YapengTian/AVVP-ECCV20,
`scripts/extract_frames.py`, `extract_rgb_feat.py`, `extract_3D_feat.py`, `extract_audio.py`),
VALOR's (github.com/Franklin905/VALOR, `utils/clip_preprocess.py`, `utils/clap_preprocess.py`),
and VGGish's published parameters (tensorflow/models, `research/audioset/vggish/vggish_params.py`).
"""
from __future__ import annotations

import numpy as np


class ExtractError(ValueError):
    """A video this project cannot extract features from; the message names the file and why."""


def frame_ticks(duration: float, fps: float) -> int:
    """How many frames `ffmpeg -r FPS` writes for a video of `duration` seconds (HAN's
    `extract_frames.py`, 8 fps): one per 1/fps s, `round(duration * fps)`, at least 1."""
    return max(1, int(round(duration * fps)))


def tick_frames(frame_times: np.ndarray, ticks: int, fps: float) -> np.ndarray:
    """(ticks,) index of the decoded frame that output frame n of an `fps` resampling shows:
    ffmpeg's fps conversion rounds each input timestamp to the nearest output tick, so frame n
    is the last input frame that starts before (n + 0.5) / fps (the first frame where none
    does). `frame_times`: (F,) start times in seconds, ascending."""
    if len(frame_times) == 0:
        raise ValueError("no decoded frames")
    bounds = (np.arange(ticks) + 0.5) / fps
    return np.maximum(np.searchsorted(frame_times, bounds, side="left") - 1, 0)


def even_samples(count: int, k: int) -> np.ndarray:
    """(k,) indices `np.round(np.linspace(0, count - 1, k))`: HAN's 80 frames of the 8 fps
    frames (`extract_rgb_feat.py`, `extract_3D_feat.py`, `n_frame_steps=80`) and VALOR's 10
    (`clip_preprocess.py`). Frames repeat where a video has fewer than k."""
    return np.round(np.linspace(0, count - 1, k)).astype(np.int64)


def clip_groups(frames: int, clip_len: int) -> np.ndarray:
    """(frames // clip_len, clip_len) consecutive frame indices: HAN's R(2+1)D-18 input,
    80 sampled frames in 10 clips of 8 (`extract_3D_feat.py`, `images[i // 8, :, i % 8]`)."""
    if frames % clip_len:
        raise ValueError(f"{frames} frames do not make clips of {clip_len}")
    return np.arange(frames).reshape(-1, clip_len)


def stack_rows(frames: int, stack: int = 24, step: int = 8) -> int:
    """I3D rows of a video of `frames` frames (at 25 fps) as video_features makes them with
    UnAV-100's stack of 24 and step of 8: a stack is taken once the frame after it has arrived
    (that frame is the flow stream's), so stacks start at 0, 8, 16, ... while start + 25 <= frames."""
    return 0 if frames < stack + 1 else 1 + (frames - stack - 1) // step


def fit_length(wave: np.ndarray, samples: int) -> np.ndarray:
    """LLP's 10 s clips: the first `samples` samples, zero-padded at the end where the audio is
    shorter (our rule: HAN's VGGish would give fewer than 10 rows there, which its training
    code cannot read)."""
    if len(wave) >= samples:
        return wave[:samples]
    return np.concatenate([wave, np.zeros(samples - len(wave), dtype=wave.dtype)])


def frame_count(samples: int, window: int, hop: int) -> int:
    """Frames of `window` samples every `hop` samples without padding, as VGGish's
    `mel_features.frame` makes them: 1 + (samples - window) // hop, or 0."""
    return 0 if samples < window else 1 + (samples - window) // hop


def vggish_rows(samples: int, rate: int = 16000, hop_s: float = 0.96) -> int:
    """VGGish examples of a waveform: STFT frames of 25 ms every 10 ms, then examples of 96
    frames (0.96 s) every `hop_s` (0.96 s in HAN's release; 0.32 s in UnAV-100's, its issue
    #7). 10 s at 16 kHz: 998 frames, 10 examples at 0.96 s, 29 at 0.32 s."""
    frames = frame_count(samples, int(round(0.025 * rate)), int(round(0.010 * rate)))
    return frame_count(frames, 96, int(round(hop_s * 100)))


def min_vggish_samples(rate: int = 16000) -> int:
    """The shortest waveform that gives one VGGish example: 96 STFT frames (0.975 s at 16 kHz)."""
    return int(round(0.025 * rate)) + 95 * int(round(0.010 * rate))


def segment_bounds(samples: int, segments: int) -> np.ndarray:
    """(segments, 2) [start, end) sample indices of VALOR's CLAP segments
    (`clap_preprocess.py`, `get_audio_embedding`): starts at `round(linspace(0, N, segments + 1))`,
    each N // segments long."""
    starts = np.round(np.linspace(0, samples, segments + 1)).astype(np.int64)[:-1]
    return np.stack([starts, starts + samples // segments], 1)


def llp_seconds(duration: float, clip_s: float = 10.0, min_s: float = 1.0) -> float:
    """The part of a video an LLP feature set covers: its first `clip_s` seconds (LLP's clips
    are 10 s; a longer file is trimmed). Shorter than `min_s` is an `ExtractError`."""
    if not duration >= min_s:  # NaN too
        raise ExtractError(f"too short: {duration:.2f} s, at least {min_s:g} s")
    return min(duration, clip_s)

