"""Decoding a video file with PyAV (FFmpeg's libraries, the ones HAN's `ffmpeg` calls use):
its duration, its frames at the times a feature set asks for, its audio resampled.

Every failure is an `ExtractError` naming the file: not a media file, no video or audio
stream, a stream that does not decode.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from avvp_dist.extract.timing import ExtractError


def _av():
    try:
        import av
    except ImportError as e:
        raise ExtractError(f"PyAV is not installed ({e}): pip install 'avvp_dist[extract]'") from None
    return av


def _open(path: Path):
    av = _av()
    try:
        return av.open(str(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise ExtractError(f"{path}: cannot open as a media file ({e})") from None


def duration(path: Path) -> float:
    """Seconds: the container's duration, else its longest stream's."""
    with _open(path) as c:
        if c.duration:
            return c.duration / 1e6
        spans = [float(s.duration * s.time_base) for s in c.streams if s.duration and s.time_base]
        if not spans:
            raise ExtractError(f"{path}: no duration in the container or its streams")
        return max(spans)


def iter_ticks(path: Path, fps: float, ticks: int):
    """Yields (n, frame) for n = 0 .. ticks - 1: the av.VideoFrame an `fps` resampling shows as
    its frame n (`timing.tick_frames`: the last frame that starts before (n + 0.5) / fps, the
    first frame before it starts), decoding the first video stream once, in order."""
    av = _av()
    with _open(path) as c:
        if not c.streams.video:
            raise ExtractError(f"{path}: no video stream")
        stream = c.streams.video[0]
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        n, shown = 0, None
        try:
            for i, frame in enumerate(c.decode(stream)):
                t = frame.time if frame.time is not None else i / rate
                while n < ticks and (n + 0.5) / fps <= t:
                    yield n, shown if shown is not None else frame
                    n += 1
                shown = frame
                if n >= ticks:
                    return
        except av.FFmpegError as e:
            raise ExtractError(f"{path}: video stream does not decode ({e})") from None
    if shown is None:
        raise ExtractError(f"{path}: the video stream has no frames")
    for m in range(n, ticks):
        yield m, shown


def frames_at(path: Path, ticks: np.ndarray, fps: float) -> np.ndarray:
    """(len(ticks), H, W, 3) uint8 RGB: frame n of an `fps` resampling for each n in `ticks`."""
    wanted = set(np.asarray(ticks).tolist())
    got = {n: f.to_ndarray(format="rgb24") for n, f in iter_ticks(path, fps, max(wanted) + 1) if n in wanted}
    return np.stack([got[n] for n in np.asarray(ticks).tolist()])


def audio(path: Path, rate: int, sample_format: str = "s16") -> np.ndarray:
    """(N,) float32 mono at `rate` Hz, resampled by FFmpeg's swresample, channels averaged.
    `s16`: through 16-bit samples divided by 32768, as HAN's chain does (moviepy writes a
    16 kHz 16-bit WAV, VGGish's reader divides by 32768 and averages channels); `flt`: float
    samples (as librosa loads them for VALOR's CLAP)."""
    av = _av()
    with _open(path) as c:
        if not c.streams.audio:
            raise ExtractError(f"{path}: no audio stream")
        stream = c.streams.audio[0]
        resampler = av.AudioResampler(format=sample_format + "p", layout=stream.layout.name, rate=rate)
        chunks = []
        try:
            for frame in c.decode(stream):
                chunks += [f.to_ndarray() for f in resampler.resample(frame)]
            chunks += [f.to_ndarray() for f in resampler.resample(None)]
        except av.FFmpegError as e:
            raise ExtractError(f"{path}: audio stream does not decode ({e})") from None
    if not chunks:
        raise ExtractError(f"{path}: the audio stream has no samples")
    wave = np.concatenate(chunks, axis=1).astype(np.float32)
    if sample_format == "s16":
        wave /= 32768.0
    return wave.mean(0)
