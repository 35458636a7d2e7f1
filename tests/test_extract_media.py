"""Decoding test videos the tests wrote (PyAV), and what each feature set's recipe feeds its
network: which frames, at what size and normalisation, which audio, how many rows."""
import numpy as np
import pytest
import torch

pytest.importorskip("av", reason="PyAV is in the extract and test extras")

import extract_stand_ins as stand_ins  # noqa: E402
from media_helpers import COMMON, LOSSLESS, make_video, tone  # noqa: E402

import avvp_dist.datasets  # noqa: E402,F401  (registers LLP and UnAV-100)
from avvp_dist.data.datasets import data_spec  # noqa: E402
from avvp_dist.extract import media, timing  # noqa: E402
from avvp_dist.extract.encoders import CLIP_NORM, IMAGENET, KINETICS  # noqa: E402
from avvp_dist.extract.run import Extractor  # noqa: E402
from avvp_dist.extract.timing import ExtractError  # noqa: E402


def grey_index(level: np.ndarray) -> np.ndarray:
    """The frame number a grey level says (`frame_value`), robust to the codec's rounding."""
    return np.round(np.asarray(level, dtype=np.float64) / 4).astype(int)


@pytest.mark.parametrize("kind", [LOSSLESS, COMMON], ids=["ffv1", "h264"])
def test_frames_at_8_fps_from_a_16_fps_video(tmp_path, kind):
    path = make_video(tmp_path / "v", seconds=4, fps=16, kind=kind)
    assert abs(media.duration(path) - 4) < 0.05
    n = timing.frame_ticks(media.duration(path), 8)
    frames = media.frames_at(path, np.arange(n), 8)
    assert frames.shape == (32, 48, 64, 3)
    # tick t at t/8 s shows frame 2t of the 16 fps video
    assert grey_index(frames[:, 10, 10, 0]).tolist() == [2 * t for t in range(32)]


def test_frames_at_8_fps_from_a_25_fps_video(tmp_path):
    path = make_video(tmp_path / "v", seconds=2.5, fps=25)
    frames = media.frames_at(path, np.arange(20), 8)
    assert grey_index(frames[:, 5, 5, 0]).tolist() == timing.tick_frames(np.arange(62) / 25, 20, 8).tolist()


def test_audio_resampled_and_averaged(tmp_path):
    path = make_video(tmp_path / "v", seconds=3, rate=44100, channels=2, tone_hz=440)
    wave = media.audio(path, 16000)
    assert abs(len(wave) - 3 * 16000) <= 2
    spectrum = np.abs(np.fft.rfft(wave[1600:-1600]))
    assert abs(np.argmax(spectrum) * 16000 / len(wave[1600:-1600]) - 440) < 2
    # the channels at amplitude 0.5 and 0.25, averaged
    assert abs(np.abs(wave[1600:-1600]).max() - 0.375) < 0.01
    src = tone(3, 440, 44100, 2).mean(0)
    assert abs(np.sqrt((wave ** 2).mean()) - np.sqrt((src ** 2).mean())) < 0.005
    assert len(media.audio(path, 48000, "flt")) == pytest.approx(3 * 48000, abs=3)


def test_broken_and_streamless_files_are_named(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video" * 100)
    with pytest.raises(ExtractError, match="bad.mp4: cannot open"):
        media.duration(bad)
    silent = make_video(tmp_path / "silent", seconds=2, audio=False)
    with pytest.raises(ExtractError, match="silent.mkv: no audio stream"):
        media.audio(silent, 16000)
    blind = make_video(tmp_path / "blind", seconds=2, video=False)
    with pytest.raises(ExtractError, match="blind.mkv: no video stream"):
        media.frames_at(blind, np.arange(3), 8)


def specs(dataset, feature_set, names=None):
    return [s for s in data_spec(dataset).feature_set(feature_set).features if names is None or s.name in names]


def unnormalise(x: torch.Tensor, stats) -> torch.Tensor:
    mean, std = (torch.tensor(v).reshape(1, 3, *([1] * (x.dim() - 2))) for v in stats)
    return (x * std + mean) * 255


@pytest.fixture
def recorded(monkeypatch):
    monkeypatch.setattr(stand_ins, "INPUTS", {})
    stand_ins.install()
    return stand_ins


def test_han_recipes(tmp_path, recorded):
    """A 4 s, 16 fps video: 32 frames at 8 fps, sampled to 80 (HAN's linspace, frames repeat),
    224 crops for ResNet-152, 10 clips of 8 at 112 for R(2+1)D-18, VGGish on 10 s (padded)."""
    path = make_video(tmp_path / "v", seconds=4, fps=16, size=(48, 64))
    rows = Extractor.build("llp", "han", specs("llp", "han"), torch.device("cpu")).rows(path)
    assert {k: v.shape for k, v in rows.items()} == {"vggish": (10, 128), "res152": (80, 2048), "r2plus1d_18": (10, 512)}
    expected = (2 * timing.even_samples(32, 80)).tolist()
    x = torch.cat(recorded.INPUTS["resnet152"])
    assert x.shape == (80, 3, 224, 224)
    assert grey_index(unnormalise(x, IMAGENET)[:, 0, 112, 112]).tolist() == expected
    clips = torch.cat(recorded.INPUTS["r2plus1d_18"])
    assert clips.shape == (10, 3, 8, 112, 112)
    got = grey_index(unnormalise(clips.permute(0, 2, 1, 3, 4).reshape(80, 3, 112, 112), KINETICS)[:, 0, 56, 56])
    assert got.tolist() == expected
    assert rows["vggish"].min() >= 0 and rows["vggish"].max() <= 255 and (rows["vggish"] == np.floor(rows["vggish"])).all()


def test_valor_recipes(tmp_path, recorded):
    """VALOR: 10 of the 8 fps frames at 224 x 224 for CLIP; 10 CLAP segments of the 48 kHz audio."""
    path = make_video(tmp_path / "v", seconds=4, fps=16)
    rows = Extractor.build("llp", "valor", specs("llp", "valor"), torch.device("cpu")).rows(path)
    assert {k: v.shape for k, v in rows.items()} == {"clap": (10, 512), "clip": (10, 768), "r2plus1d_18": (10, 512)}
    np.testing.assert_allclose(np.linalg.norm(rows["clap"], axis=1), 1, rtol=1e-5)
    (clap_in,) = recorded.INPUTS["clap"]
    assert clap_in["input_features"].shape[:2] == (10, 4)  # fusion: 4 mel views per segment
    assert not clap_in["is_longer"].any()  # 0.4 s segments are repeat-padded, never longer than 10 s


def test_clip_frames(tmp_path, monkeypatch):
    seen = []
    stand_ins.install()
    monkeypatch.setitem(stand_ins.recipes.LOADERS, "clip", lambda: Recorder(stand_ins.clip(), seen))
    path = make_video(tmp_path / "v", seconds=4, fps=16)
    Extractor.build("llp", "valor", specs("llp", "valor", {"clip"}), torch.device("cpu")).rows(path)
    x = torch.cat(seen)
    assert x.shape == (10, 3, 224, 224)
    assert grey_index(unnormalise(x, CLIP_NORM)[:, 1, 100, 100]).tolist() == (2 * timing.even_samples(32, 10)).tolist()


class Recorder(torch.nn.Module):
    def __init__(self, model, seen):
        super().__init__()
        self.model, self.seen = model, seen

    def forward(self, pixel_values):
        self.seen.append(pixel_values.detach().cpu())
        return self.model(pixel_values=pixel_values)


def test_unav100_vggish_every_032_seconds(tmp_path, recorded):
    path = make_video(tmp_path / "v", seconds=7, fps=8)
    rows = Extractor.build("unav100", "unav100", specs("unav100", "unav100", {"vggish"}), torch.device("cpu")).rows(path)
    assert rows["vggish"].shape == (timing.vggish_rows(7 * 16000, hop_s=0.32), 128) == (19, 128)


def test_unav100_i3d_stacks_at_25_fps(tmp_path, recorded):
    """A 3 s, 16 fps video resampled to 25 fps: 75 frames, stacks of 24 every 8 while the frame
    after a stack exists: 7 rows; stack i holds 25 fps frames 8i .. 8i + 23."""
    path = make_video(tmp_path / "v", seconds=3, fps=16, size=(48, 64))
    rows = Extractor.build("unav100", "unav100", specs("unav100", "unav100", {"vggish", "rgb"}),
                           torch.device("cpu")).rows(path)
    assert rows["rgb"].shape == (timing.stack_rows(75), 1024) == (7, 1024)
    x = torch.cat(recorded.INPUTS["i3d_rgb"])
    assert x.shape == (7, 3, 24, 224, 224) and x.min() >= -1 and x.max() <= 1
    shown = timing.tick_frames(np.arange(48) / 16, 75, 25)  # the 16 fps frame at each 25 fps tick
    for i in range(7):
        grey = (x[i, 0, :, 112, 112] + 1) / 2 * 255
        assert grey_index(grey).tolist() == shown[8 * i:8 * i + 24].tolist()


def test_unav100_flow_has_no_extractor():
    with pytest.raises(ExtractError, match=r"no extractor for features \['vggish', 'rgb', 'flow'\] of unav100/unav100"):
        Extractor.build("unav100", "unav100", specs("unav100", "unav100"), torch.device("cpu"))


def test_too_short_video_is_an_error(tmp_path, recorded):
    path = make_video(tmp_path / "v", seconds=0.5, fps=8)
    with pytest.raises(ExtractError, match="too short: 0.5"):
        Extractor.build("llp", "han", specs("llp", "han"), torch.device("cpu")).rows(path)
    with pytest.raises(ExtractError, match="too short: 0.50 s of audio"):
        Extractor.build("unav100", "unav100", specs("unav100", "unav100", {"vggish"}), torch.device("cpu")).rows(path)
