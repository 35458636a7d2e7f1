"""Every real LLP and UnAV-100 name: the shard key round trip over all of them, and the whole
pipeline (raw folder -> shard -> stream -> training steps -> eval -> parse) on the odd ones."""
from __future__ import annotations

import csv
import json
import re
import subprocess
import sys

import numpy as np
import pytest
from webdataset.tariterators import base_plus_ext

from avvp_dist.cli import main
from avvp_dist.data.config import DataConfig
from avvp_dist.data.keys import decode_key, encode_key
from avvp_dist.datasets.llp import DENSE_FILES, WEAK_FILES, read_llp_annotations
from avvp_dist.datasets.unav100 import read_unav100_annotations
from avvp_dist.eval.detection import DetectionConfig
from avvp_dist.eval.run import evaluate
from avvp_dist.model.checkpoint import load_model, save_model
from conftest import repo_file
from test_eval import known_output_model

LLP = repo_file("annotations", "llp")
UNAV = repo_file("annotations", "unav100", "unav100_annotations.json")


def _names() -> dict[str, list[str]]:
    llp = read_llp_annotations(LLP)
    unav = read_unav100_annotations(UNAV)
    return {d: [r.vid for s in ("train", "val", "test") for r in a.split(s)] for d, a in (("llp", llp), ("unav100", unav))}


def odd(name: str) -> bool:
    """'.' in it, a leading '-' or '_', or '__' anywhere: the names that broke or could break keys."""
    return "." in name or name[0] in "-_" or "__" in name


def test_every_real_name_round_trips_through_its_key():
    names = _names()
    assert (len(names["llp"]), len(names["unav100"])) == (11849, 10790)
    for dataset, vids in names.items():
        keys = [encode_key(v) for v in vids]
        assert [decode_key(k) for k in keys] == vids, dataset
        assert len(set(keys)) == len(set(vids)) == len(vids), f"{dataset}: two names share a key"
        for k, v in zip(keys, vids):
            # what WebDataset itself reads from the member names: this key, this suffix
            assert base_plus_ext(f"{k}.json") == (k, "json") and base_plus_ext(f"{k}.vggish.npy") == (k, "vggish.npy")
            assert not (k.startswith("__") and k.endswith("__"))
            if re.fullmatch(r"[A-Za-z0-9_-]+", v) and not (v.startswith("__") and v.endswith("__")):
                assert k == v  # ordinary names are their own keys
    dotted = [v for v in names["llp"] if "." in v]
    assert len(dotted) == 5 and encode_key("AKVyIQoSyBA_131.8_141.8") == "AKVyIQoSyBA_131%2E8_141%2E8"


DIM = 4
# names are under test, not detections: an untrained model's noisy outputs searched over every
# UnAV-100 class would double this test's time, so the evaluations search each video's top 3
FEW_CLASSES = ["eval.detection.top_k_classes=3"]


def _llp_raw(root, keep: set[str]) -> dict[str, list[str]]:
    """The real LLP CSVs restricted to `keep`, and tiny features in the published layout."""
    root.mkdir(parents=True)
    for name in [*WEAK_FILES.values(), *DENSE_FILES.values()]:
        with open(LLP / name, newline="") as f, open(root / name, "w", newline="") as g:
            rows = list(csv.reader(f, delimiter="\t"))
            csv.writer(g, delimiter="\t").writerows([rows[0]] + [r for r in rows[1:] if r and r[0] in keep])
    ann = read_llp_annotations(root)
    rng = np.random.default_rng(0)
    for n, rows in (("vggish", 10), ("res152", 80), ("r2plus1d_18", 10)):
        (root / "features" / n).mkdir(parents=True)
        for vid in {v[:11] for v in keep}:
            np.save(root / "features" / n / f"{vid}.npy", rng.normal(size=(rows, DIM)).astype(np.float32))
    return {s: [r.vid for r in ann.split(s)] for s in ("train", "val", "test")}


def _unav_raw(root, keep: set[str]) -> dict[str, list[str]]:
    root.mkdir(parents=True)
    doc = json.loads(UNAV.read_text())
    doc["database"] = {v: e for v, e in doc["database"].items() if v in keep}
    (root / "unav100_annotations.json").write_text(json.dumps(doc))
    ann = read_unav100_annotations(root)
    rng = np.random.default_rng(0)
    (root / "features").mkdir()
    for vid, e in doc["database"].items():
        rows = max(4, round(e["duration"] / 0.32))
        for n in ("vggish", "rgb", "flow"):
            np.save(root / "features" / f"{vid}_{n}.npy", rng.normal(size=(rows, DIM)).astype(np.float32))
    return {s: [r.vid for r in ann.split(s)] for s in ("train", "val", "test")}


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("dataset", ["llp", "unav100"])
def test_pipeline_on_every_odd_real_name(tmp_path, dataset):
    """Every odd name of the dataset (LLP: 175, UnAV-100: 1,356) and 60 ordinary ones:
    sharded, streamed by 2 training steps, evaluated and parsed; the outputs name the videos
    by their real names. Predictions are in name order, so the first plots are of names starting with '-'."""
    names = _names()[dataset]
    ordinary = [v for v in names if not odd(v)]
    assert len(names) - len(ordinary) == {"llp": 175, "unav100": 1356}[dataset]
    keep = {v for v in names if odd(v)} | set(ordinary[:20] + ordinary[-40:])  # train's first, val/test's last
    raw, shards, run = tmp_path / "raw", tmp_path / "shards", tmp_path / "run"
    splits = (_llp_raw if dataset == "llp" else _unav_raw)(raw, keep)
    assert sum(map(len, splits.values())) == len(keep) and all(splits.values())
    feats = {"llp": [("vggish", "audio", 10, 1), ("res152", "visual", 80, 8), ("r2plus1d_18", "visual", 10, 1)],
             "unav100": [("vggish", "audio", 0, 1), ("rgb", "visual", 0, 1), ("flow", "visual", 0, 1)]}[dataset]
    file = "{name}/{id}.npy" if dataset == "llp" else "{vid}_{name}.npy"
    common = [f"data.dataset={dataset}", f"data.root={raw}", f"data.shards={shards}", "data.samples_per_shard=64",
              "data.features=" + json.dumps([{"name": n, "modality": m, "dim": DIM, "steps": s, "pool": p, "file": file}
                                             for n, m, s, p in feats])]
    assert main(["shard", *common]) == 0  # failed on the five LLP names with '.' before
    for split, vids in splits.items():
        manifest = json.loads((shards / split / "manifest.json").read_text())
        assert manifest["num_samples"] == len(vids) and not manifest["report"]["reader"].get("feature_rows_off_duration")
    # a whole epoch of the training stream, as the trainer reads it: every training video comes
    # back under its real name (the five LLP names with '.' were written, never streamed, before)
    if dataset == "llp":
        from avvp_dist.data.stream import ShardStream

        stream = ShardStream(shards / "train", DataConfig(dataset=dataset, batch_size=1, num_workers=1), 0, 1, 0)
        streamed = [m["vid"] for batch in stream for m in batch.meta]
        assert sorted(streamed) == sorted(splits["train"]) and len({v for v in streamed if "." in v}) == 5
    train = subprocess.run(
        [sys.executable, "-m", "avvp_dist.cli", "train", *common, f"run_dir={run}", "model.d_model=16",
         "model.ffn_dim=16", "model.embed_dim=4", "data.batch_size=8", "data.num_workers=1", "train.max_steps=2",
         "train.eval_every=0", "train.checkpoint_every=0", "train.plots=3", "train.warmup_steps=1",
         *FEW_CLASSES],
        capture_output=True, text=True, timeout=240)
    assert train.returncode == 0, train.stdout[-2000:] + train.stderr[-3000:]
    # the test-split evaluation at the end of training: its timelines are named and titled by the real names
    plotted = sorted(p.stem for p in (run / "eval_test" / "plots" / "student").glob("*.png"))
    assert plotted == sorted(splits["test"])[:3] and all(v.startswith("-") for v in plotted)
    # every video of the split comes back from inference under its real name
    data = DataConfig(dataset=dataset, num_workers=0, batch_size=64)
    model, meta = load_model(run / "best_student.pt")
    pred = evaluate({}, shards, data, "test", model_override={"student": model},
                    detection=DetectionConfig(top_k_classes=3))["models"]["student"]["predictions"]
    assert pred["keys"] == sorted(splits["test"]) and [m["vid"] for m in pred["meta"]] == pred["keys"]
    # parse an odd name with a model of known output: the name and the events come back
    ckpt = tmp_path / "known.pt"
    save_model(known_output_model(model, [2]), ckpt, meta["classes"], dataset)
    vid = next(v for v in splits["test"] if "__" in v or "." in v)
    paths = [f"{n}={raw / 'features' / file.format(name=n, vid=vid, id=vid[:11])}" for n, *_ in feats]
    # the full name is in UnAV-100's file names; LLP's name the 11-character id only. A name that
    # starts with '-' is given as --video=NAME (argparse would read it as an option)
    video = [] if dataset == "unav100" else [f"--video={vid}"]
    res = subprocess.run([sys.executable, "-m", "avvp_dist.cli", "parse", "--checkpoint", str(ckpt), *video, *paths],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    doc = json.loads(res.stdout)
    assert doc["video"] == vid and doc["events"] and {e["class"] for e in doc["events"]} == {meta["classes"][2]}
