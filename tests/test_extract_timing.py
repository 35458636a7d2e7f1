"""What the extractors' preprocessing decides, against hand-computed cases and plain
implementations written here: frame times and samples, clip windows, audio windows and
segments, padding and trimming, the VGGish front end and postprocessing."""
import math

import numpy as np
import pytest
import torch

from avvp_dist.extract import timing, vggish
from avvp_dist.extract.timing import ExtractError


def test_frame_ticks_as_ffmpeg_r_8_writes_them():
    assert timing.frame_ticks(10.0, 8) == 80
    assert timing.frame_ticks(10.01, 8) == 80 and timing.frame_ticks(9.95, 8) == 80
    assert timing.frame_ticks(2.5, 8) == 20
    assert timing.frame_ticks(0.01, 8) == 1


def test_tick_frames_pick_the_frame_showing_at_each_tick():
    """25 fps into 8 fps by hand: tick n takes the last frame that starts before (n + 0.5) / 8."""
    times = np.arange(250) / 25
    got = timing.tick_frames(times, 80, 8)
    assert got[:4].tolist() == [1, 4, 7, 10]  # 0.0625 s > 0.04 (frame 1); 0.1875 > 0.16 (frame 4); ...
    plain = [max([k for k, t in enumerate(times) if t < (n + 0.5) / 8], default=0) for n in range(80)]
    assert got.tolist() == plain
    late = timing.tick_frames(np.array([0.5, 0.6]), 3, 8)  # ticks before the first frame show it
    assert late.tolist() == [0, 0, 0]


def test_even_samples_are_hans_linspace():
    assert timing.even_samples(80, 80).tolist() == list(range(80))
    got = timing.even_samples(81, 80)
    assert got[0] == 0 and got[-1] == 80 and len(set(got.tolist())) == 80
    short = timing.even_samples(32, 80)  # fewer frames than samples: frames repeat, in order
    assert short[0] == 0 and short[-1] == 31 and (np.diff(short) >= 0).all() and len(set(short.tolist())) == 32
    assert timing.even_samples(80, 10).tolist() == [0, 9, 18, 26, 35, 44, 53, 61, 70, 79]


def test_clip_groups_are_consecutive_frames():
    g = timing.clip_groups(80, 8)
    assert g.shape == (10, 8) and g[1].tolist() == list(range(8, 16)) and g[-1, -1] == 79
    with pytest.raises(ValueError, match="81 frames"):
        timing.clip_groups(81, 8)


def test_i3d_stacks():
    """Stacks of 24 frames every 8, each taken once frame 25 of it has arrived."""
    assert timing.stack_rows(24) == 0 and timing.stack_rows(25) == 1 and timing.stack_rows(32) == 1
    assert timing.stack_rows(33) == 2 and timing.stack_rows(250) == 1 + (250 - 25) // 8 == 29


def test_llp_covers_the_first_10_seconds_and_pads_audio():
    assert timing.llp_seconds(12.3) == 10.0 and timing.llp_seconds(7.5) == 7.5
    with pytest.raises(ExtractError, match="too short: 0.40 s"):
        timing.llp_seconds(0.4)
    with pytest.raises(ExtractError, match="too short"):
        timing.llp_seconds(float("nan"))
    w = np.arange(5, dtype=np.float32) + 1
    assert timing.fit_length(w, 8).tolist() == [1, 2, 3, 4, 5, 0, 0, 0]
    assert timing.fit_length(w, 3).tolist() == [1, 2, 3]


def test_vggish_rows_per_second():
    """10 s at 16 kHz: 1 + (160000 - 400) // 160 = 998 STFT frames; examples of 96 frames every
    96 (HAN) or every 32 (UnAV-100) frames."""
    assert timing.frame_count(160000, 400, 160) == 998
    assert timing.vggish_rows(160000) == 1 + (998 - 96) // 96 == 10
    assert timing.vggish_rows(160000, hop_s=0.32) == 1 + (998 - 96) // 32 == 29
    assert timing.vggish_rows(60 * 16000, hop_s=0.32) == 1 + ((1 + (960000 - 400) // 160) - 96) // 32
    n = timing.min_vggish_samples()
    assert n == 15600 and timing.vggish_rows(n) == 1 and timing.vggish_rows(n - 1) == 0


def test_clap_segments_as_valor_cuts_them():
    b = timing.segment_bounds(480000, 10)
    assert b[:, 0].tolist() == list(range(0, 480000, 48000)) and (b[:, 1] - b[:, 0] == 48000).all()
    n = 479_993  # starts rounded from linspace(0, N, 11), each N // 10 long
    b = timing.segment_bounds(n, 10)
    assert b[:, 0].tolist() == [round(i * n / 10) for i in range(10)] and (b[:, 1] - b[:, 0] == n // 10).all()
    assert b[-1, 1] <= n


def plain_log_mel(wave: np.ndarray) -> np.ndarray:
    """VGGish's front end written out frame by frame and band by band."""
    frames = [wave[i:i + 400] for i in range(0, len(wave) - 400 + 1, 160)]
    hann = [0.5 - 0.5 * math.cos(2 * math.pi * k / 400) for k in range(400)]
    mel = lambda f: 1127.0 * math.log(1 + f / 700.0)  # noqa: E731
    edges = np.linspace(mel(125), mel(7500), 66)
    bins = [mel(8000 * k / 256) for k in range(257)]
    out = []
    for fr in frames:
        spec = np.abs(np.fft.rfft(np.asarray(fr) * hann, 512))
        row = []
        for b in range(64):
            lo, c, hi = edges[b:b + 3]
            w = [0.0] + [max(0.0, min((m - lo) / (c - lo), (hi - m) / (hi - c))) for m in bins[1:]]
            row.append(math.log(float(np.dot(spec, w)) + 0.01))
        out.append(row)
    return np.array(out)


def test_vggish_front_end_matches_a_plain_implementation():
    rng = np.random.default_rng(0)
    wave = (0.3 * np.sin(2 * np.pi * 1000 * np.arange(20000) / 16000) + 0.01 * rng.standard_normal(20000))
    ex = vggish.log_mel_examples(wave, hop_s=0.32)
    plain = plain_log_mel(wave)
    assert ex.shape == (timing.vggish_rows(20000, hop_s=0.32), 96, 64) == (1, 96, 64)
    np.testing.assert_allclose(ex[0], plain[:96], rtol=1e-5, atol=1e-5)
    centers = np.linspace(1127 * math.log(1 + 125 / 700), 1127 * math.log(1 + 7500 / 700), 66)[1:-1]
    band = int(np.argmin(np.abs(centers - 1127 * math.log(1 + 1000 / 700))))
    assert abs(int(ex[0].mean(0).argmax()) - band) <= 1  # a 1 kHz tone lands in the 1 kHz band


def test_vggish_network_and_postprocessing():
    torch.manual_seed(0)
    net = vggish.VGGish().eval()
    assert net(torch.randn(3, 1, 96, 64)).shape == (3, 128)
    emb = torch.tensor([[-3.0, -2.0, 0.0, 0.1, 1.999, 2.5]])
    got = vggish.postprocess(emb, torch.eye(6), torch.zeros(6))
    # clip to [-2, 2], then (x + 2) * 255 / 4, truncated as astype(np.uint8) does
    assert got.tolist() == [[0.0, 0.0, 127.0, 133.0, 254.0, 255.0]]
    assert vggish.postprocess(torch.tensor([[0.1]]), torch.eye(1), torch.zeros(1), "round").tolist() == [[134.0]]
    means = torch.full((6,), 1.0)
    assert vggish.postprocess(emb + 1, torch.eye(6), means).tolist() == got.tolist()
    pca = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # rows of the PCA matrix pick the outputs
    assert vggish.postprocess(torch.tensor([[0.0, 1.0]]), pca, torch.zeros(2)).tolist() == [[191.0, 127.0]]
