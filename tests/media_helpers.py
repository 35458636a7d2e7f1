"""Test videos made by the tests with PyAV: frame k is one grey level that says k, the audio
a sine tone, so that what the extractor decodes can be checked against what was written."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

LOSSLESS = ("mkv", "ffv1", "pcm_s16le")  # every frame and sample reads back exactly
COMMON = ("mp4", "libx264", "aac")  # what LLP's downloads are


def frame_value(k: int) -> int:
    """The grey level of frame k (distinct for k < 64, in steps of 4)."""
    return (4 * k) % 256


def make_video(path: Path, seconds: float = 10.0, fps: int = 16, size: tuple[int, int] = (48, 64),
               tone_hz: float = 440.0, rate: int = 44100, channels: int = 2, kind: tuple = LOSSLESS,
               video: bool = True, audio: bool = True) -> Path:
    """Writes `path` (its suffix is `kind`'s container): `seconds * fps` frames of H x W,
    frame k filled with `frame_value(k)`, and a tone at `rate` Hz on `channels` channels
    (channel c at amplitude 0.5 / (c + 1))."""
    import av

    container, vcodec, acodec = kind
    path = Path(path).with_suffix("." + container)
    with av.open(str(path), "w") as out:  # every stream is added before the first packet
        vs = out.add_stream(vcodec, rate=fps) if video else None
        astream = _tone_stream(out, acodec, rate, channels) if audio else None
        if vs is not None:
            vs.height, vs.width = size
            vs.pix_fmt = "yuv420p" if vcodec != "ffv1" else "yuv444p"
            if vcodec == "libx264":
                vs.options = {"qp": "0"}
            for k in range(int(round(seconds * fps))):
                frame = av.VideoFrame.from_ndarray(np.full((*size, 3), frame_value(k), np.uint8), format="rgb24")
                frame.pts, frame.time_base = k, Fraction(1, fps)
                for packet in vs.encode(frame):
                    out.mux(packet)
            for packet in vs.encode():
                out.mux(packet)
        if astream is not None:
            _write_tone(out, astream, seconds, tone_hz, rate, channels)
    return path


def tone(seconds: float, tone_hz: float, rate: int, channels: int) -> np.ndarray:
    """(channels, N) float32: what `make_video` writes."""
    t = np.arange(int(round(seconds * rate))) / rate
    return np.stack([0.5 / (c + 1) * np.sin(2 * np.pi * tone_hz * t) for c in range(channels)]).astype(np.float32)


def _tone_stream(out, codec: str, rate: int, channels: int):
    stream = out.add_stream(codec, rate=rate, layout={1: "mono", 2: "stereo"}[channels])
    stream.time_base = Fraction(1, rate)
    return stream


def _write_tone(out, stream, seconds: float, tone_hz: float, rate: int, channels: int) -> None:
    import av

    layout = {1: "mono", 2: "stereo"}[channels]
    wave = tone(seconds, tone_hz, rate, channels)
    fmt = "s16p" if stream.codec_context.name == "pcm_s16le" else "fltp"
    data = np.round(wave * 32767).astype(np.int16) if fmt == "s16p" else wave
    step = 1024
    for start in range(0, wave.shape[1], step):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data[:, start:start + step]), format=fmt, layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
