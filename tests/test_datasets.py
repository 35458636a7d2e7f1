"""Datasets are specs: a third one plugs in by registration alone, through shard, train, eval and parse."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from avvp_dist.config import ConfigError, load_config

HERE = Path(__file__).resolve().parent
TOY = HERE / "toy_dataset.py"
TINY = ["model.d_model=16", "model.ffn_dim=16", "model.num_heads=2", "model.embed_dim=0", "data.batch_size=8",
        "data.num_workers=0", "train.log_every=5", "train.warmup_steps=2", "train.lr=3e-3", "train.plots=1",
        "method.teacher.enabled=false", "method.pseudo.enabled=false", "method.cma.enabled=false",
        "method.refine.enabled=false"]


def toy(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`avvp-dist ARGS` in a fresh process that registered the toy dataset first."""
    out = subprocess.run([sys.executable, str(TOY), *args], cwd=cwd, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def test_an_unregistered_dataset_is_refused_with_the_known_names():
    with pytest.raises(ConfigError, match=r"unknown dataset 'toy'; registered: \['llp', 'unav100'\]"):
        load_config(None, ["data.dataset=toy"])


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_third_dataset_is_one_spec(tmp_path):
    import toy_dataset

    raw = toy_dataset.write_raw(tmp_path / "raw")
    shards, run = tmp_path / "shards", tmp_path / "run"
    common = ["data.dataset=toy", f"data.root={raw}", f"data.shards={shards}", "data.samples_per_shard=16"]
    toy("shard", *common, cwd=tmp_path)
    manifest = json.loads((shards / "train" / "manifest.json").read_text())
    assert manifest["dataset"] == "toy" and [f["name"] for f in manifest["features"]] == ["mic", "cam"]
    out = toy("train", *common, *TINY, f"run_dir={run}", "train.max_steps=40", "train.eval_every=20",
              "train.select=student", cwd=tmp_path)
    assert "video F1" in out.stdout  # the spec's own table
    vals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    val = [v for v in vals if v["kind"] == "val/student"]
    assert [v["step"] for v in val] == [20, 40] and all("video_f1" in v for v in val)
    best = max(val, key=lambda v: v["video_f1"])
    assert f"best       student video_f1 {best['video_f1']:.2f} at step {best['step']}" in out.stdout
    test = json.loads((run / "eval_test" / "metrics.json").read_text())
    assert test["dataset"] == "toy" and test["models"]["student"]["metrics"]["video_f1"] > 60  # planted classes
    assert len(list((run / "eval_test" / "plots" / "student").glob("*.png"))) == 1
    toy("eval", "--checkpoint", f"s={run / 'best_student.pt'}", *common, f"run_dir={run}", "--split", "val",
        cwd=tmp_path)
    assert "video_f1" in json.loads((run / "eval_val" / "metrics.json").read_text())["models"]["s"]["metrics"]
    parse = toy("parse", "--checkpoint", str(run / "best_student.pt"),
                *(f"{n}={raw / 'features' / n / 'test-000.npy'}" for n in ("mic", "cam")), cwd=tmp_path)
    doc = json.loads(parse.stdout)
    events = doc["events"]
    assert doc["video"] == "test-000"  # the toy's file layout {name}/{vid}.npy names the video
    labels = json.loads((raw / "toy.json").read_text())["test-000"]["labels"]
    assert {e["class"] for e in events} == set(labels)  # the spec's events: whole-video, 6 rows of 2 s
    assert all(e["start"] == 0.0 and e["end"] == 12.0 and e["modality"] == "audio-visual" for e in events)
