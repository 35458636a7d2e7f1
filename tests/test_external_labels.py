"""External segment-level pseudo-labels (VALOR's CLIP / CLAP kind): their masks, the generator
that writes them, their way through the shards into batches, and the refusals."""
import csv
import hashlib
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from avvp_dist.data.config import DataConfig
from avvp_dist.data.features import FeatureError, FeatureSpec, read_segment_labels
from avvp_dist.data.stream import ShardStream
from avvp_dist.data.synth import SynthConfig, synthesize
from avvp_dist.method.external import external_masks, union_masks
from avvp_dist.kernels import PseudoMasks
from conftest import synth_and_shard
from train_helpers import run, train_cmd

VALOR_DIMS = {"clap": 8, "clip": 12, "r2plus1d_18": 8}


def test_external_masks_by_hand():
    # 1 video, 3 segments (the last one padding), 2 classes; only class 0 is labelled
    labels = torch.zeros(1, 3, 2, 2)
    labels[0, 0, 0, 0] = 1  # audio, segment 0, class 0
    labels[0, 1, :, 0] = 0.7  # both modalities, segment 1, class 0 (soft, >= 0.5)
    labels[0, 1, 1, 1] = 1  # visual, class 1: not labelled, so no positive
    labels[0, 2, :, 0] = 1  # padding
    y, valid = torch.tensor([[1.0, 0.0]]), torch.tensor([[True, True, False]])
    m = external_masks(labels, y, valid)
    pos = torch.zeros(1, 3, 2, 2, dtype=torch.bool)
    pos[0, 0, 0, 0] = pos[0, 1, 0, 0] = pos[0, 1, 1, 0] = True
    assert torch.equal(m.pos, pos)
    reliable = torch.zeros(1, 3, 2, 2, dtype=torch.bool)
    reliable[0, :2] = True  # every valid position, both classes, both modalities
    assert torch.equal(m.reliable, reliable)
    assert torch.equal(m.pairs, torch.tensor([[[False, False], [True, False], [False, False]]]))
    # joined with a teacher that is sure of segment 0's visual track only, and a reliable negative elsewhere
    t_pos = torch.zeros_like(pos)
    t_pos[0, 0, 1, 0] = True
    t_rel = t_pos.clone()
    t_rel[0, 0, :, 1] = True
    u = union_masks(PseudoMasks(t_pos, t_rel, t_pos[:, :, 0] & t_pos[:, :, 1]), m)
    assert torch.equal(u.pos, pos | t_pos)
    assert torch.equal(u.reliable, t_rel | pos)  # an external 0 alone is not reliable when joined
    assert torch.equal(u.pairs, torch.tensor([[[True, False], [True, False], [False, False]]]))


def _tree_hash(root: Path, skip=("synth_info.json",)) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name not in skip:
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_generator_knobs_off_write_the_recorded_files():
    """LLP: generator v2's output, byte for byte (recorded before v3's knobs existed; v4 leaves
    LLP's files as they were). UnAV-100: v4's (events on the official time grid, 0.32 s later
    than v2/v3's, whose digest was 88efa3f7...), recorded 2026-12-06."""
    want = {"llp": ("354b3dc9921bab19c34e1c9a141c6eaed991008006409672760b73378162cdde",
                    {"res152": 16, "vggish": 8, "r2plus1d_18": 8}),
            "unav100": ("8aeffc0d88b00f3be822d81cab03cd31b8458eaac9e48cdd4369ea1d8e643d31",
                        {"rgb": 8, "flow": 8, "vggish": 8})}
    for ds, (digest, dims) in want.items():
        with tempfile.TemporaryDirectory() as d:
            synthesize(SynthConfig(dataset=ds, num_train=6, num_val=3, num_test=3, feature_dims=dims), d, seed=3)
            assert _tree_hash(Path(d)) == digest, ds


def _valor(out: Path, noise: float, labels: bool = True, seed: int = 4) -> Path:
    cfg = SynthConfig(dataset="llp", feature_set="valor", feature_dims=VALOR_DIMS, external_labels=labels,
                      label_noise=noise, num_train=20, num_val=30, num_test=30)
    return synthesize(cfg, out, seed=seed)


def _dense_truth(root: Path) -> dict[str, np.ndarray]:
    """Per val/test video, (10, 2, 25) from the dense annotation files, written independently here."""
    from avvp_dist.datasets.llp import LLP_CLASSES

    truth = {}
    for m, name in enumerate(("AVVP_eval_audio.csv", "AVVP_eval_visual.csv")):
        with open(root / name) as f:
            for row in csv.DictReader(f, delimiter="\t"):
                arr = truth.setdefault(row["filename"][:11], np.zeros((10, 2, 25), np.int64))
                arr[int(row["onset"]):int(row["offset"]), m, LLP_CLASSES.index(row["event_labels"])] = 1
    return truth


def test_noiseless_labels_are_the_planted_truth_and_noise_flips_that_share(tmp_path):
    root = _valor(tmp_path / "clean", 0.0)
    truth = _dense_truth(root)
    assert len(truth) > 30
    for vid, want in truth.items():
        a = np.load(root / "CLAP" / "segment_pseudo_labels" / f"{vid}.npy")
        v = np.load(root / "CLIP" / "segment_pseudo_labels" / f"{vid}.npy")
        assert a.shape == v.shape == (10, 25) and a.dtype == np.int64
        assert np.array_equal(np.stack([a, v], 1), want), vid
    noisy = _valor(tmp_path / "noisy", 0.3)
    flipped = cells = 0
    for f in sorted((root / "CLIP" / "segment_pseudo_labels").glob("*.npy")):
        clean, dirty = np.load(f), np.load(noisy / "CLIP" / "segment_pseudo_labels" / f.name)
        labelled = (clean.any(0) | dirty.any(0))  # classes that can carry a label (the video's labels)
        assert not dirty[:, ~labelled].any()  # no label outside the video's classes
        flipped += int((clean != dirty).sum())
        cells += int(labelled.sum()) * 10
    assert 0.2 < flipped / cells < 0.4, flipped / cells  # 0.3 of the labelled classes' cells (one class seen
    # empty in both is not counted, so the share runs a little high)
    # the features are the same files whether labels are written or not, and whatever their noise
    plain = _valor(tmp_path / "plain", 0.0, labels=False)
    for sub in ("CLAP/features", "CLIP/features", "feats/r2plus1d_18"):
        assert _tree_hash(plain / sub) == _tree_hash(root / sub) == _tree_hash(noisy / sub), sub
    assert not (plain / "CLIP" / "segment_pseudo_labels").exists()


def test_labels_through_the_shards_into_batches(tmp_path):
    """UnAV-100 format: variable lengths, so padding is checked too."""
    shards = synth_and_shard(tmp_path, dataset="unav100", train=12, val=4, test=4,
                             extra=("synth.external_labels=true", "data.external_labels=true"))
    raw = tmp_path / "raw" / "features"
    cfg = DataConfig(dataset="unav100", batch_size=4, num_workers=0, external_labels=True)
    stream = ShardStream(shards / "train", cfg, train=False)
    assert [f["name"] for f in stream.manifest.labels] == ["audio_labels", "visual_labels"]
    seen = 0
    for batch in stream:
        seg, mask = batch.segment_labels, batch.mask
        assert seg.shape == (*mask.shape, 2, 100)
        for i, vid in enumerate(batch.keys):
            t = int(mask[i].sum())
            for m, name in enumerate(("audio_labels", "visual_labels")):
                want = np.load(raw / f"{vid}_{name}.npy")[:t]  # trimmed to the features' common length
                assert np.array_equal(seg[i, :t, m].numpy(), want.astype(np.float32)), vid
            assert not seg[i, t:].any()  # padding
            seen += 1
    assert seen == 12
    # without external_labels the shards hold none and batches carry none
    plain = synth_and_shard(tmp_path / "plain", dataset="unav100", train=4, val=4, test=4)
    assert next(iter(ShardStream(plain / "train", cfg, train=False))).segment_labels is None


def test_bad_label_files_are_refused_naming_the_file(tmp_path):
    spec = FeatureSpec("clip_labels", "visual", 25, steps=10)
    cases = {"range.npy": np.full((10, 25), 2.0), "shape.npy": np.zeros((10, 24)), "rows.npy": np.zeros((9, 25)),
             "text.npy": np.full((10, 25), "x")}
    for name, arr in cases.items():
        np.save(tmp_path / name, arr)
        with pytest.raises(FeatureError, match=str(tmp_path / name)):
            read_segment_labels(tmp_path / name, spec)
    np.save(tmp_path / "ok.npy", np.eye(10, 25, dtype=np.int64))
    assert read_segment_labels(tmp_path / "ok.npy", spec).dtype == np.float32


@pytest.mark.timeout(120)
def test_external_source_without_labels_in_the_shards_is_refused(tmp_path):
    shards = synth_and_shard(tmp_path, train=8, val=4, test=4)
    proc = run(train_cmd(None, tmp_path / "run", shards, "method.pseudo.source=external", "train.max_steps=2"))
    assert proc.returncode != 0
    assert "method.pseudo.source=external trains with external segment labels" in proc.stdout + proc.stderr
    assert "data.external_labels=true" in proc.stdout + proc.stderr
