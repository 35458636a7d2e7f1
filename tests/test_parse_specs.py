"""`parse` reads a model's feature files as its training data was read: the checkpoint's own
layout (rows on disk, pooling), else the dataset release that names the feature; a file that
does not fit is an error naming the file, its rows and the rows expected."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from avvp_dist.data.features import FeatureError
from avvp_dist.datasets.llp import LLP_CLASSES
from avvp_dist.eval.parse import VideoParser
from avvp_dist.model.checkpoint import save_model
from avvp_dist.model.config import ModelConfig
from avvp_dist.model.model import AVVPModel

VALOR = [{"name": "clap", "modality": "audio", "dim": 8}, {"name": "clip", "modality": "visual", "dim": 12},
         {"name": "r2plus1d_18", "modality": "visual", "dim": 6}]


def _checkpoint(tmp_path, feature_files=None):
    torch.manual_seed(0)
    model = AVVPModel(VALOR, len(LLP_CLASSES), ModelConfig(d_model=16, ffn_dim=16, embed_dim=0))
    path = tmp_path / "teacher.pt"
    save_model(model, path, LLP_CLASSES, "llp", feature_files=feature_files)
    return path


def _files(tmp_path, rows: dict[str, int]) -> dict[str, str]:
    out = {}
    for f in VALOR:
        path = tmp_path / f"{f['name']}.npy"
        np.save(path, np.random.default_rng(0).standard_normal((rows[f["name"]], f["dim"])).astype(np.float32))
        out[f["name"]] = str(path)
    return out


def test_a_valor_model_refuses_files_of_other_lengths_by_its_release(tmp_path):
    """A checkpoint that names no layout (written before checkpoints carried one): VALOR's
    release says 10 rows each; files of 9, 6 and 10 rows gave 33 events over 6 s before."""
    parser = VideoParser(_checkpoint(tmp_path))
    with pytest.raises(FeatureError, match=r"clap\.npy: 9 rows, expected 10 for feature 'clap'"):
        parser.parse_files(_files(tmp_path, {"clap": 9, "clip": 6, "r2plus1d_18": 10}))
    events = parser.parse_files(_files(tmp_path, {"clap": 10, "clip": 10, "r2plus1d_18": 10}))
    assert all(0 <= e["start"] < e["end"] <= 10 for e in events)


def test_the_checkpoints_own_layout_wins(tmp_path):
    """Training data read from 20-row files pooled by 2: parse reads new files the same way."""
    files = {f["name"]: {"steps": 20, "pool": 2, "file": "{name}/{id}.npy"} for f in VALOR}
    parser = VideoParser(_checkpoint(tmp_path, files))
    with pytest.raises(FeatureError, match=r"10 rows, expected 20 \(10 segments of 2 frames\)"):
        parser.parse_files(_files(tmp_path, {"clap": 10, "clip": 10, "r2plus1d_18": 10}))
    events = parser.parse_files(_files(tmp_path, {"clap": 20, "clip": 20, "r2plus1d_18": 20}))
    assert all(0 <= e["start"] < e["end"] <= 10 for e in events)


def test_the_command_says_which_file_with_exit_2(tmp_path):
    ckpt = _checkpoint(tmp_path)
    files = _files(tmp_path, {"clap": 9, "clip": 6, "r2plus1d_18": 10})
    out = subprocess.run([sys.executable, "-m", "avvp_dist.cli", "parse", "--checkpoint", str(ckpt),
                          *[f"{k}={v}" for k, v in files.items()]], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "9 rows, expected 10" in out.stderr and "Traceback" not in out.stderr


def test_shards_record_the_files_their_features_came_from():
    from avvp_dist.data.features import FeatureSpec
    from avvp_dist.data.raw import shard_features

    (entry,) = shard_features([FeatureSpec("res152", "visual", 2048, steps=80, pool=8)])
    assert entry["steps"] == 10 and entry["source"] == {"steps": 80, "pool": 8, "file": "{name}/{id}.npy"}
