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
    # with a teacher: its masks against the truth (here the same model as the student: no gain)
    assert "masks against the truth" in text and "CMA pairs: precision teacher" in text
    quality = doc["mask_quality"]
    assert quality["gain_f1"] == {"audio": 0.0, "visual": 0.0} and 0 <= quality["teacher"]["audio_precision"] <= 1
    # the base rate is the data's, not a model's
    assert 0 < quality["teacher"]["audio_base_rate"] == quality["student"]["audio_base_rate"] < 1
    pngs = sorted((out / "plots" / "student").glob("*.png"))
    assert len(pngs) == 2 and pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def known_output_model(model: AVVPModel, on: list[int]) -> AVVPModel:
    """The classifier reads nothing and says yes to the classes `on` only (bias +8 / -8): every
    segment of every modality has P = sigmoid(8) for them, and the attentive pooling of a
    constant is that constant, so p = P too; the parse is known."""
    with torch.no_grad():
        model.head.classifier.weight.zero_()
        model.head.classifier.bias.fill_(-8.0)
        model.head.classifier.bias[on] = 8.0
    return model


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_parse_one_video(tmp_path, capsys):
    """A model built to say Dog and Violin over the whole clip, in both modalities: the parse
    is exactly those four events, under the video's name."""
    from avvp_dist.model.checkpoint import load_model

    ckpt = _dataset(tmp_path, "llp", SMALL_DIMS, n_test=3)
    model, meta = load_model(ckpt)
    classes = meta["classes"]
    save_model(known_output_model(model, [classes.index("Dog"), classes.index("Violin_fiddle")]), ckpt, classes, "llp")
    feats = sorted((tmp_path / "raw" / "features" / "vggish").glob("*.npy"))[0].name
    paths = [f"{n}={tmp_path / 'raw' / 'features' / n / feats}" for n in ("vggish", "res152", "r2plus1d_18")]
    # the model was saved with the synthetic sizes; res152 is pooled 80 -> 10 like the shard writer does
    capsys.readouterr()
    assert main(["parse", "--checkpoint", str(ckpt), *paths]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["video"] == feats[:-4] and all(0.99 < e.pop("score") <= 1 for e in doc["events"])
    assert doc["events"] == [{"class": c, "modality": m, "start": 0.0, "end": 10.0}
                             for m in ("audio", "visual") for c in ("Dog", "Violin_fiddle")]
    assert main(["parse", "--checkpoint", str(ckpt), "--video", "AKVyIQoSyBA_131.8_141.8", *paths]) == 0
    assert json.loads(capsys.readouterr().out)["video"] == "AKVyIQoSyBA_131.8_141.8"
    assert main(["parse", "--checkpoint", str(ckpt), paths[0]]) == 2
    assert "missing feature 'res152'" in capsys.readouterr().err
    assert main(["parse", "--checkpoint", str(ckpt), "a.npy"]) == 2
    assert "'a.npy': give each feature file as name=path.npy" in capsys.readouterr().err


@pytest.mark.parametrize("edit, fragment", [
    # 9 VGGish rows with 79 ResNet frames parsed to 40 events over 9 segments before
    ({"vggish": (9, 8), "res152": (79, 16)}, r"vggish/v\.npy: 9 rows, expected 10 for feature 'vggish'"),
    ({"res152": (79, 16)}, r"res152/v\.npy: 79 rows, expected 80 \(10 segments of 8 frames\)"),
    ({"r2plus1d_18": (10,)}, r"r2plus1d_18/v\.npy: shape \(10,\), expected \(T, 8\)"),
])
def test_parse_refuses_files_that_do_not_fit(tmp_path, capsys, edit, fragment):
    import numpy as np

    torch.manual_seed(0)
    feats = [{"name": n, "modality": "audio" if n == "vggish" else "visual", "dim": d, "steps": 10}
             for n, d in SMALL_DIMS.items()]
    save_model(AVVPModel(feats, 25, ModelConfig(d_model=16, ffn_dim=16, embed_dim=0)), tmp_path / "m.pt",
               [f"c{i}" for i in range(25)], "llp")
    shapes = {"vggish": (10, 8), "res152": (80, 16), "r2plus1d_18": (10, 8), **edit}
    for n, shape in shapes.items():
        (tmp_path / n).mkdir()
        np.save(tmp_path / n / "v.npy", np.zeros(shape, np.float32))
    assert main(["parse", "--checkpoint", str(tmp_path / "m.pt"), *(f"{n}={tmp_path / n / 'v.npy'}" for n in shapes)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("avvp-dist parse: error: ") and __import__("re").search(fragment, err), err


def test_parse_refuses_variable_length_files_far_apart(tmp_path):
    """UnAV-100 features: a few rows apart are trimmed, as the shard writer does; more is an error."""
    import numpy as np

    from avvp_dist.data.features import FeatureError
    from avvp_dist.eval.parse import VideoParser

    feats = [{"name": n, "modality": "audio" if n == "vggish" else "visual", "dim": 8, "steps": 0}
             for n in SMALL_DIMS_UNAV]
    save_model(AVVPModel(feats, 100, ModelConfig(d_model=16, ffn_dim=16, embed_dim=0)), tmp_path / "m.pt",
               [f"c{i}" for i in range(100)], "unav100")
    parser = VideoParser(tmp_path / "m.pt")
    for rows in ((50, 48, 46), (50, 48, 45)):
        for n, r in zip(SMALL_DIMS_UNAV, rows):
            np.save(tmp_path / f"__x.y_{n}.npy", np.zeros((r, 8), np.float32))
        paths = {n: tmp_path / f"__x.y_{n}.npy" for n in SMALL_DIMS_UNAV}
        if rows[-1] == 46:
            assert parser.parse_video(paths)["video"] == "__x.y"
        else:
            with pytest.raises(FeatureError, match="different lengths .*__x.y_vggish.npy: 50 rows.*: 45 rows"):
                parser.parse_files(paths)


def test_checkpoint_with_other_classes_is_refused(tmp_path):
    ckpt = _dataset(tmp_path, "llp", SMALL_DIMS, n_test=3)
    from avvp_dist.model.checkpoint import load_model
    model, meta = load_model(ckpt)
    save_model(model, tmp_path / "other.pt", meta["classes"][::-1], "llp")
    from avvp_dist.data.config import DataConfig
    from avvp_dist.eval.run import evaluate
    with pytest.raises(ValueError, match="classes differ from the shards"):
        evaluate({"x": tmp_path / "other.pt"}, tmp_path / "shards", DataConfig(num_workers=0))


def test_checkpoint_of_another_feature_set_or_size_is_refused(tmp_path, capsys):
    """eval: a model for other input features names both sets; eval and parse: weights that do
    not fit the model config stored beside them name the tensors and shapes."""
    ckpt = _dataset(tmp_path, "llp", SMALL_DIMS, n_test=3)
    from avvp_dist.model.checkpoint import load_model

    model, meta = load_model(ckpt)
    wider = [{**f, "dim": f["dim"] * 2} for f in meta["features"]]
    save_model(AVVPModel(wider, 25, ModelConfig(d_model=16, ffn_dim=16, embed_dim=4)), tmp_path / "wide.pt",
               meta["classes"], "llp")
    capsys.readouterr()
    assert main(["eval", f"data.shards={tmp_path / 'shards'}", "--checkpoint", f"w={tmp_path / 'wide.pt'}",
                 "--out", str(tmp_path / "ev")]) == 2
    err = capsys.readouterr().err
    assert "wide.pt: the model takes features vggish (audio, 16), res152 (visual, 32)" in err
    assert "the shards hold vggish (audio, 8), res152 (visual, 16)" in err
    # a checkpoint whose weights are of another model size than its config says
    blob = torch.load(ckpt, weights_only=True)
    blob["model_config"]["d_model"] = 32
    torch.save(blob, tmp_path / "resized.pt")
    for cmd in (["eval", f"data.shards={tmp_path / 'shards'}", "--checkpoint", f"r={tmp_path / 'resized.pt'}"],
                ["parse", "--checkpoint", str(tmp_path / "resized.pt"), "vggish=x.npy"]):
        assert main(cmd) == 2
        err = capsys.readouterr().err
        assert "resized.pt: its weights do not fit the model its config describes" in err, err
        assert "shapes differ: " in err and "weights (16,), model (32,)" in err, err


def test_a_model_checkpoint_holding_a_pickle_is_refused(tmp_path, capsys, monkeypatch):
    from conftest import _Boom

    monkeypatch.chdir(tmp_path)
    torch.save({"format": "avvp_dist-model/1", "payload": _Boom()}, tmp_path / "evil.pt")
    assert main(["parse", "--checkpoint", str(tmp_path / "evil.pt"), "vggish=x.npy"]) == 2
    assert "evil.pt: refused: it holds an object that is not weights or plain data (posix.mkdir)" in capsys.readouterr().err
    assert not (tmp_path / "UNPICKLED_MARKER").exists()
