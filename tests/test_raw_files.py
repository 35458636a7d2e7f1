"""Raw feature files that are empty, truncated or not NumPy at all: the shard writer's feature
error naming the file (before: a bare EOFError), counted and skipped under `data.on_error=skip`,
and `parse` says which file with exit 2."""
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from avvp_dist.config import load_config
from avvp_dist.data.features import FeatureError
from avvp_dist.data.raw import raw_samples, read_annotations
from conftest import SMALL_DIMS, synth_and_shard


def _break(path: Path, how: str) -> None:
    data = path.read_bytes()
    path.write_bytes({"empty": b"", "truncated": data[:-24], "text": b"vggish features, not an array\n"}[how])


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    folder = tmp_path_factory.mktemp("raw")
    synth_and_shard(folder, train=12, val=4, test=4)
    return folder / "raw"


@pytest.mark.parametrize("how", ["empty", "truncated", "text"])
def test_a_broken_file_is_a_feature_error_and_a_counted_skip(raw, tmp_path, how):
    cfg = load_config(None, [f"data.root={raw}", "data.features=" + json.dumps(
        [{"name": n, "modality": "audio" if n == "vggish" else "visual", "dim": d,
          "steps": 80 if n == "res152" else 10, "pool": 8 if n == "res152" else 1} for n, d in SMALL_DIMS.items()])])
    records = read_annotations(cfg.data).split("train")
    victim = raw / "features" / "vggish" / f"{records[0].vid[:11]}.npy"
    saved = victim.read_bytes()
    try:
        _break(victim, how)
        with pytest.raises(FeatureError, match=str(victim)):
            list(raw_samples(records, cfg.data, Counter()))
        cfg.data.on_error = "skip"
        counts = Counter()
        kept = [name for name, *_ in raw_samples(records, cfg.data, counts)]
        assert counts["skipped/bad_feature_file"] == 1 and len(kept) == len(records) - 1
    finally:
        victim.write_bytes(saved)


def test_parse_names_an_empty_file_with_exit_2(tmp_path):
    import torch

    from avvp_dist.datasets.llp import LLP_CLASSES
    from avvp_dist.model.checkpoint import save_model
    from avvp_dist.model.config import ModelConfig
    from avvp_dist.model.model import AVVPModel

    features = [{"name": n, "modality": "audio" if n == "vggish" else "visual", "dim": d} for n, d in SMALL_DIMS.items()]
    torch.manual_seed(0)
    save_model(AVVPModel(features, len(LLP_CLASSES), ModelConfig(d_model=16, ffn_dim=16, embed_dim=0)),
               tmp_path / "m.pt", LLP_CLASSES, "llp")
    files = {}
    for f in features:
        files[f["name"]] = tmp_path / f"{f['name']}.npy"
        np.save(files[f["name"]], np.zeros((80 if f["name"] == "res152" else 10, f["dim"]), np.float32))
    files["vggish"].write_bytes(b"")
    out = subprocess.run([sys.executable, "-m", "avvp_dist.cli", "parse", "--checkpoint", str(tmp_path / "m.pt"),
                          *[f"{k}={v}" for k, v in files.items()]], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert f"{files['vggish']}: not a .npy file (empty)" in out.stderr
