"""Synthetic data: real formats, deterministic, planted structure where the ground truth says."""
import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from avvp_dist.data.annotations import segment_labels
from avvp_dist.data.config import DataConfig
from avvp_dist.data.features import read_video_features
from avvp_dist.datasets.llp import read_llp_annotations
from avvp_dist.data.synth import SynthConfig, synthesize
from avvp_dist.datasets.unav100 import read_unav100_annotations
from conftest import SMALL_DIMS, SMALL_DIMS_UNAV, repo_file


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode() + p.read_bytes())
    return h.hexdigest()


def test_deterministic_for_a_seed(tmp_path):
    cfg = SynthConfig(num_train=8, num_val=4, num_test=4, feature_dims=SMALL_DIMS)
    a = _digest(synthesize(cfg, tmp_path / "a", seed=1))
    assert a == _digest(synthesize(cfg, tmp_path / "b", seed=1))
    assert a != _digest(synthesize(cfg, tmp_path / "c", seed=2))


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    return float((pos[:, None] > neg[None, :]).mean())


@pytest.fixture(scope="module")
def llp_synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("llp_synth")
    cfg = SynthConfig(num_train=40, num_val=200, num_test=20, feature_dims={"vggish": 32, "res152": 32, "r2plus1d_18": 32})
    synthesize(cfg, out, seed=0)
    return out, cfg


def test_llp_format_is_read_by_the_real_reader(llp_synth):
    out, cfg = llp_synth
    ann = read_llp_annotations(out)
    assert [len(ann.split(s)) for s in ("train", "val", "test")] == [40, 200, 20]
    rec = ann.split("val")[0]
    feats = read_video_features(rec.vid, cfg.feature_specs(), out / "features")
    assert {k: v.shape for k, v in feats.items()} == {"vggish": (10, 32), "res152": (10, 32), "r2plus1d_18": (10, 32)}
    assert (out / "features" / "res152" / f"{rec.vid[:11]}.npy").is_file()


def test_events_are_planted_where_the_dense_gt_says(llp_synth):
    """A class direction estimated on half the videos scores, within a video of the other half,
    the class's event segments above its non-event segments: clearly in the event's own
    modality, much less in the other one (leakage is weaker than the event)."""
    out, cfg = llp_synth
    ann = read_llp_annotations(out)
    recs = ann.split("val")
    half = len(recs) // 2
    gt = np.stack([segment_labels(r.events, ann.classes, 10) for r in recs])  # (N, 2, C, T)
    labelled = np.array([[c in r.labels for c in ann.classes] for r in recs])  # (N, C)
    wins = {}
    for name, mod in (("vggish", 0), ("r2plus1d_18", 1)):
        x = np.stack([read_video_features(r.vid, cfg.feature_specs(), out / "features")[name] for r in recs])
        own_wins, other_wins = [], []
        for c in range(len(ann.classes)):
            pos = gt[:half, mod, c].astype(bool)
            neg = (gt[:half, :, c].sum(1) == 0) & labelled[:half, c, None]
            if pos.sum() < 5 or neg.sum() < 5:
                continue
            w = x[:half][pos].mean(0) - x[:half][neg].mean(0)
            for i in range(half, len(recs)):
                if not labelled[i, c]:
                    continue
                s = x[i] @ w
                own, other = gt[i, mod, c].astype(bool), gt[i, 1 - mod, c].astype(bool)
                none = ~own & ~other
                if own.any() and none.any():
                    own_wins.append(s[own].mean() > s[none].mean())
                if (other & ~own).any() and none.any():
                    other_wins.append(s[other & ~own].mean() > s[none].mean())
        wins[name] = (np.mean(own_wins), np.mean(other_wins), len(own_wins), len(other_wins))
    for name, (own, other, n_own, n_other) in wins.items():
        assert n_own >= 20 and n_other >= 5, wins
        assert own > 0.85 and other < own - 0.1, wins


def test_label_statistics_from_real_annotations(tmp_path):
    real = read_llp_annotations(repo_file("annotations", "llp"))
    cfg = SynthConfig(num_train=20, num_val=10, num_test=10, feature_dims=SMALL_DIMS, annotations=str(repo_file("annotations", "llp")))
    ann = read_llp_annotations(synthesize(cfg, tmp_path, seed=0))
    real_sets = {s: {r.labels for r in real.split(s)} for s in ("train", "val", "test")}
    real_events = {tuple(sorted((e.label, e.modality, e.onset, e.offset) for e in r.events)) for s in ("val", "test")
                   for r in real.split(s)}
    for s in ("train", "val", "test"):
        assert all(r.labels in real_sets[s] for r in ann.split(s))
    for r in ann.split("val") + ann.split("test"):
        assert tuple(sorted((e.label, e.modality, e.onset, e.offset) for e in r.events)) in real_events


def test_unav100_format_with_uneven_modalities(tmp_path):
    cfg = SynthConfig(dataset="unav100", num_train=6, num_val=3, num_test=3, feature_dims=SMALL_DIMS_UNAV)
    synthesize(cfg, tmp_path, seed=0)
    ann = read_unav100_annotations(tmp_path)
    assert [len(ann.split(s)) for s in ("train", "val", "test")] == [6, 3, 3] and len(ann.classes) == 100
    counts = Counter()
    for r in ann.split("train"):
        feats = read_video_features(r.vid, DataConfig(dataset="unav100", features=cfg.feature_specs()).feature_specs(),
                                    tmp_path / "features", counts=counts)
        assert abs(feats["rgb"].shape[0] - r.duration / 0.32) <= 3
    assert counts["videos_trimmed_to_shortest_feature"] > 0
