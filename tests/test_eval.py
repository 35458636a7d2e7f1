"""Evaluation end to end: sharded inference (1 vs 2 ranks), `avvp-dist eval` outputs, `parse`."""
import json

import pytest
import torch

from avvp_dist.cli import main
from avvp_dist.model.checkpoint import save_model
from avvp_dist.model.config import ModelConfig
from avvp_dist.model.model import AVVPModel
from conftest import SMALL_DIMS, SMALL_DIMS_UNAV, synth_and_shard
from dist_helpers import run_world


def _dataset(tmp, dataset, dims, n_test):
    synth_and_shard(tmp, dataset, dims, train=4, val=6, test=n_test, per_shard=4)
    manifest = json.loads((tmp / "shards" / "test" / "manifest.json").read_text())
    torch.manual_seed(0)
    model = AVVPModel(manifest["features"], len(manifest["classes"]), ModelConfig(d_model=16, ffn_dim=16, embed_dim=4))
    with torch.no_grad():  # spread the outputs so that thresholds cut somewhere
        model.head.classifier.weight.mul_(20)
    save_model(model, tmp / "model.pt", manifest["classes"], dataset)
    return tmp / "model.pt"


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("dataset, dims", [("llp", SMALL_DIMS), ("unav100", SMALL_DIMS_UNAV)])
def test_two_ranks_give_the_same_metrics_as_one(tmp_path, dataset, dims):
    ckpt = _dataset(tmp_path, dataset, dims, n_test=13)  # odd: ranks get 6 and 7 videos
    base = {"checkpoint": str(ckpt), "shards": str(tmp_path / "shards"), "split": "test", "workers": 1}
    (one,) = run_world("eval_worker.py", 1, base, tmp_path, "one")
    two = run_world("eval_worker.py", 2, base, tmp_path, "two")
    assert len(one["keys"]) == 13 and two[0]["keys"] == two[1]["keys"] == one["keys"]
    for k, v in one["metrics"].items():
        assert abs(two[0]["metrics"][k] - v) <= 1e-9 and abs(two[1]["metrics"][k] - v) <= 1e-9, k
    assert len(set(one["metrics"].values())) > 2, "degenerate metrics: the test would not see a difference"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_eval_command_writes_metrics_tables_and_plots(tmp_path, capsys):
    ckpt = _dataset(tmp_path, "llp", SMALL_DIMS, n_test=7)
    capsys.readouterr()
    out = tmp_path / "ev"
    assert main(["eval", f"data.shards={tmp_path / 'shards'}", "--checkpoint", f"student={ckpt}", "--checkpoint", f"teacher={ckpt}",
                 "--plots", "2", "--out", str(out), "--calibrate-on", "val"]) == 0
    doc = json.loads((out / "metrics.json").read_text())
    assert set(doc["models"]) == {"student", "teacher"} and doc["split"] == "test"
    assert set(doc["models"]["student"]["metrics"]) >= {"seg_type", "evt_event"}
    assert len(doc["models"]["student"]["class_thresholds"]) == 25
    text = capsys.readouterr().out
    assert "segment-level" in text and "per-class segment-level F1 (teacher)" in text and "Speech" in text
    pngs = sorted((out / "plots" / "student").glob("*.png"))
    assert len(pngs) == 2 and pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_parse_one_video(tmp_path, capsys):
    ckpt = _dataset(tmp_path, "llp", SMALL_DIMS, n_test=3)
    feats = sorted((tmp_path / "raw" / "features" / "vggish").glob("*.npy"))[0].name
    paths = [f"{n}={tmp_path / 'raw' / 'features' / n / feats}" for n in ("vggish", "res152", "r2plus1d_18")]
    # the model was saved with the synthetic sizes; res152 is pooled 80 -> 10 like the shard writer does
    capsys.readouterr()
    assert main(["parse", "--checkpoint", str(ckpt), *paths]) == 0
    events = json.loads(capsys.readouterr().out)
    assert isinstance(events, list)
    for e in events:
        assert set(e) == {"class", "modality", "start", "end", "score"} and 0 <= e["start"] < e["end"] <= 10
    assert main(["parse", "--checkpoint", str(ckpt), paths[0]]) == 2
    assert "missing feature 'res152'" in capsys.readouterr().err


def test_checkpoint_with_other_classes_is_refused(tmp_path):
    ckpt = _dataset(tmp_path, "llp", SMALL_DIMS, n_test=3)
    from avvp_dist.model.checkpoint import load_model
    model, meta = load_model(ckpt)
    save_model(model, tmp_path / "other.pt", meta["classes"][::-1], "llp")
    from avvp_dist.data.config import DataConfig
    from avvp_dist.eval.run import evaluate
    with pytest.raises(ValueError, match="classes differ from the shards"):
        evaluate({"x": tmp_path / "other.pt"}, tmp_path / "shards", DataConfig(num_workers=0))
