"""Per-video feature files: checked, pooled, trimmed, never unpickled."""
from collections import Counter

import numpy as np
import pytest

from conftest import pickled_npy

from avvp_dist.data.config import FeatureSpec
from avvp_dist.data.datasets import data_spec
from avvp_dist.data.features import FeatureError, read_video_features

LLP = [FeatureSpec("vggish", "audio", 4, steps=10), FeatureSpec("res152", "visual", 3, steps=80, pool=8)]


def _save(folder, name, vid, arr):
    (folder / name).mkdir(parents=True, exist_ok=True)
    np.save(folder / name / f"{vid[:11]}.npy", arr)


def test_llp_files_by_id_prefix_and_pooling(tmp_path):
    vid = "abcdefghijk_30_40"
    frames = np.arange(80 * 3, dtype=np.float32).reshape(80, 3)
    _save(tmp_path, "vggish", vid, np.ones((10, 4), np.float32))
    _save(tmp_path, "res152", vid, frames)
    out = read_video_features(vid, LLP, tmp_path)
    assert out["vggish"].shape == (10, 4)
    np.testing.assert_allclose(out["res152"], frames.reshape(10, 8, 3).mean(1))


def test_default_layouts():
    assert [(s.name, s.dim, s.out_steps) for s in data_spec("llp").default_features()] == [
        ("vggish", 128, 10), ("res152", 2048, 10), ("r2plus1d_18", 512, 10)]
    assert [s.file for s in data_spec("unav100").default_features()] == ["{vid}_{name}.npy"] * 3


@pytest.mark.parametrize("arr, fragment", [
    (np.ones((10, 5), np.float32), r"shape \(10, 5\), expected \(T, 4\)"),
    (np.ones((9, 4), np.float32), "9 rows, expected 10"),
    (np.full((10, 4), np.nan, np.float32), "NaN or Inf"),
    (np.ones((10, 4), np.int64), "expected floating point"),
])
def test_bad_arrays_name_the_file(tmp_path, arr, fragment):
    vid = "abcdefghijk_0_10"
    _save(tmp_path, "vggish", vid, arr)
    with pytest.raises(FeatureError, match=fragment) as e:
        read_video_features(vid, LLP[:1], tmp_path)
    assert "vggish/abcdefghijk.npy" in str(e.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FeatureError, match=r"vggish/abcdefghijk.npy: feature file not found"):
        read_video_features("abcdefghijk_0_10", LLP[:1], tmp_path)


def test_pickled_npy_is_refused_not_loaded(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "vggish").mkdir()
    (tmp_path / "vggish" / "abcdefghijk.npy").write_bytes(pickled_npy())
    with pytest.raises(FeatureError, match="not a plain .npy array"):
        read_video_features("abcdefghijk_0_10", LLP[:1], tmp_path)
    assert not (tmp_path / "UNPICKLED_MARKER").exists()


def test_variable_lengths_trimmed_and_counted(tmp_path):
    specs = [FeatureSpec(n, "audio", 2, file="{vid}_{name}.npy") for n in ("rgb", "flow", "vggish")]
    for n, t in (("rgb", 31), ("flow", 30), ("vggish", 32)):
        np.save(tmp_path / f"v1_{n}.npy", np.zeros((t, 2), np.float32))
    counts = Counter()
    out = read_video_features("v1", specs, tmp_path, counts=counts)
    assert {a.shape for a in out.values()} == {(30, 2)}
    assert counts == {"videos_trimmed_to_shortest_feature": 1, "feature_rows_trimmed": 3}


def test_unav_rows_checked_against_duration(tmp_path):
    """Rows = duration / 0.32 within max(4 rows, 3%): a 32 s video has 100 rows; 96 and 104
    pass, 95 and 105 are counted (and the video is kept)."""
    from avvp_dist.data.annotations import VideoRecord
    from avvp_dist.data.config import DataConfig
    from avvp_dist.data.raw import raw_samples, rows_match_duration

    assert [rows_match_duration(r, 32.0, 0.32) for r in (95, 96, 104, 105)] == [False, True, True, False]
    assert rows_match_duration(1000, 325.0, 0.32) and not rows_match_duration(984, 325.0, 0.32)  # 3% of 1015.6
    specs = [FeatureSpec("vggish", "audio", 2, file="{vid}_{name}.npy")]
    records = []
    for i, rows in enumerate((100, 95, 105)):
        np.save(tmp_path / f"v{i}_vggish.npy", np.ones((rows, 2), np.float32))
        records.append(VideoRecord(f"v{i}", (), 32.0, []))
    counts = Counter()
    cfg = DataConfig(dataset="unav100", root=str(tmp_path), features_dir=str(tmp_path), features=specs)
    assert [name for name, _, _ in raw_samples(records, cfg, counts)] == ["v0", "v1", "v2"]
    assert counts["feature_rows_off_duration"] == 2


def test_feature_names_that_would_not_read_back_are_refused():
    """Shard members are read back with lower-cased suffixes: `VGGish` sharded, then every
    sample read back as missing its feature. Such names are refused, with the name to use."""
    import json

    from avvp_dist.config import ConfigError, load_config
    from avvp_dist.data.features import FeatureSpec

    with pytest.raises(ValueError, match="feature name 'VGGish'.*'vggish'"):
        FeatureSpec("VGGish", "audio", 128)
    with pytest.raises(ConfigError, match="VGGish"):
        load_config(None, ["data.features=" + json.dumps([{"name": "VGGish", "modality": "audio", "dim": 8},
                                                           {"name": "rgb", "modality": "visual", "dim": 8}])])
    assert FeatureSpec("r2plus1d_18", "visual", 512).name == "r2plus1d_18"
