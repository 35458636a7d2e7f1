"""The `avvp-dist` command: synth -> shard on tiny data, and errors before any work."""
import json
import subprocess
import sys


from avvp_dist.cli import main
from conftest import SMALL_DIMS

SMALL = ["synth.num_train=12", "synth.num_val=4", "synth.num_test=4", "synth.feature_dims=" + json.dumps(SMALL_DIMS),
         "data.samples_per_shard=5"]


def test_synth_and_shard_with_the_configured_features(tmp_path):
    raw, shards = tmp_path / "raw", tmp_path / "shards"
    assert main(["synth", "--out", str(raw), *SMALL]) == 0
    assert main(["shard", f"data.root={raw}", f"data.shards={shards}", *SMALL]) == 0
    for split, n in (("train", 12), ("val", 4), ("test", 4)):
        doc = json.loads((shards / split / "manifest.json").read_text())
        assert doc["num_samples"] == n and [s["count"] for s in doc["shards"]] == [5] * (n // 5) + [n % 5] * bool(n % 5)
        assert [(f["name"], f["dim"], f["steps"]) for f in doc["features"]] == [
            ("vggish", 8, 10), ("res152", 16, 10), ("r2plus1d_18", 8, 10)]


def test_bad_config_fails_before_any_work(tmp_path, capsys):
    assert main(["demo", f"run_dir={tmp_path / 'run'}", "data.batch_sise=3"]) == 2
    assert "unknown config key 'data.batch_sise'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_missing_feature_file_error_or_counted_skip(tmp_path, capsys):
    raw = tmp_path / "raw"
    assert main(["synth", "--out", str(raw), *SMALL]) == 0
    victim = next((raw / "features" / "vggish").iterdir())
    victim.unlink()
    common = [*SMALL, f"data.root={raw}", f"data.shards={tmp_path / 'shards'}"]
    assert main(["shard", *common]) == 2
    assert f"{victim}: feature file not found" in capsys.readouterr().err
    assert main(["shard", *common, "data.on_error=skip"]) == 0
    reports = [json.loads((tmp_path / "shards" / s / "manifest.json").read_text())["report"]["reader"] for s in
               ("train", "val", "test")]
    assert sum(r.get("skipped/missing_feature_file", 0) for r in reports) == 1
    assert "skipped/missing_feature_file: 1" in capsys.readouterr().out


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "avvp_dist.cli", "--help"], capture_output=True, text=True, check=True)
    assert "synth" in out.stdout and "shard" in out.stdout and "demo" in out.stdout
