"""Mask and pair telemetry on hand-made masks, probabilities and truth: shares, saturation,
spread, gap, precision and recall counted by hand; a perfect teacher scores 1.0; a teacher that
selects everything scores the class base rate."""
import math

import pytest
import torch

from avvp_dist.kernels import PseudoMasks
from avvp_dist.method.telemetry import (mask_shares, probability_stats, selection_counts, selection_scores,
                                        step_telemetry)


def one_video(T=4, C=3, labels=(0, 2)):
    y = torch.zeros(1, C)
    y[0, list(labels)] = 1
    return y, torch.ones(1, T, dtype=torch.bool)


def test_mask_shares_by_hand():
    """Labelled positions: 4 segments x 2 classes = 8 per modality. Audio: 3 positive, 2 reliable
    negatives, 3 ignored; visual: nothing selected. A selection at the unlabelled class 1 is
    outside the positions counted."""
    y, valid = one_video()
    pos = torch.zeros(1, 4, 2, 3, dtype=torch.bool)
    reliable = torch.zeros_like(pos)
    pos[0, [0, 1, 2], 0, 0] = True
    reliable[0, [0, 1, 2], 0, 0] = True
    reliable[0, [0, 3], 0, 2] = True
    reliable[0, :, 0, 1] = True  # absent class: not a labelled position
    s = mask_shares(PseudoMasks(pos, reliable, torch.zeros(1, 4, 3, dtype=torch.bool)), y, valid)
    assert (s["mask_audio_pos"], s["mask_audio_neg"], s["mask_audio_ignored"]) == (3 / 8, 2 / 8, 3 / 8)
    assert (s["mask_visual_pos"], s["mask_visual_neg"], s["mask_visual_ignored"]) == (0, 0, 1)


def test_probability_stats_by_hand():
    y, valid = one_video(T=4, C=2, labels=(1,))
    valid[0, 3] = False  # the last segment is padding
    P = torch.full((1, 4, 2, 2), 0.5)
    P[0, :, 0, 1] = torch.tensor([0.995, 0.2, 0.005, 0.999])  # audio, the labelled class
    P[0, :, 1, 1] = 0.3  # visual: constant, no spread
    s = probability_stats(P, y, valid, "student")
    assert s["student_audio_high"] == pytest.approx(1 / 3) and s["student_audio_low"] == pytest.approx(1 / 3)
    x = torch.tensor([0.995, 0.2, 0.005])
    assert s["student_audio_spread"] == pytest.approx(float(x.std(unbiased=False)), rel=1e-5)
    assert s["student_visual_high"] == 0 and s["student_visual_spread"] == pytest.approx(0, abs=1e-7)


def test_teacher_gap_at_labelled_positions():
    y, valid = one_video(T=2, C=2, labels=(0,))
    Ps, Pt = torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, 2)
    Pt[0, :, :, 0] = torch.tensor([[0.4, 0.2], [0.0, 0.2]])  # |diff| at class 0: 0.4, 0.2, 0, 0.2
    Pt[0, :, :, 1] = 0.9  # the unlabelled class does not count
    out = step_telemetry(Ps, Pt, None, y, valid)
    assert out["teacher_gap"] == pytest.approx(0.2)
    assert "mask_audio_pos" not in out and "teacher_audio_high" in out


def test_precision_recall_and_pairs_by_hand():
    """Audio truth at segments 0-1 of class 0; the teacher selects 0, 2, 3: 1 of 3 right, 1 of 2
    found. Visual truth at segment 0 of class 0, selected at 0 and 1. Pairs at 0 (true in both)
    and 1 (not in audio)."""
    y, valid = one_video(T=4, C=2, labels=(0,))
    truth = torch.zeros(1, 4, 2, 2, dtype=torch.bool)
    truth[0, [0, 1], 0, 0] = True
    truth[0, 0, 1, 0] = True
    truth[0, :, 0, 1] = True  # an unlabelled class: never counted
    pos = torch.zeros_like(truth)
    pos[0, [0, 2, 3], 0, 0] = True
    pos[0, [0, 1], 1, 0] = True
    pairs = torch.zeros(1, 4, 2, dtype=torch.bool)
    pairs[0, [0, 1], 0] = True
    c = selection_counts(pos, pairs, truth, y, valid)
    assert c["selected"][:, 0].tolist() == [3, 2] and c["correct"][:, 0].tolist() == [1, 1]
    assert c["true"][:, 0].tolist() == [2, 1] and c["true"][:, 1].tolist() == [0, 0]
    assert c["pairs"].tolist() == [2, 0] and c["pairs_correct"].tolist() == [1, 0]
    s = selection_scores(c)
    assert s["audio_precision"] == pytest.approx(1 / 3) and s["audio_recall"] == pytest.approx(1 / 2)
    assert s["audio_f1"] == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    assert s["visual_precision"] == pytest.approx(1 / 2) and s["visual_recall"] == 1.0
    assert s["pair_precision"] == pytest.approx(1 / 2)
    # 4 labelled positions per modality (class 0's segments): 2 and 1 of them true, 1 in both
    assert s["audio_base_rate"] == pytest.approx(2 / 4) and s["visual_base_rate"] == pytest.approx(1 / 4)
    assert s["pair_base_rate"] == pytest.approx(1 / 4)


def random_truth(seed=0, B=6, T=10, C=5):
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(B, C, generator=g) < 0.5).float()
    y[:, 0] = 1
    truth = (torch.rand(B, T, 2, C, generator=g) < 0.4) & y.bool()[:, None, None, :]
    return y, torch.ones(B, T, dtype=torch.bool), truth


def test_a_perfect_teacher_scores_one():
    y, valid, truth = random_truth()
    s = selection_scores(selection_counts(truth, truth.all(2), truth, y, valid))
    for m in ("audio", "visual"):
        assert s[f"{m}_precision"] == s[f"{m}_recall"] == s[f"{m}_f1"] == 1.0
    assert s["pair_precision"] == 1.0


def test_an_all_positive_teacher_scores_the_base_rate():
    y, valid, truth = random_truth(seed=1)
    everything = torch.ones_like(truth)
    s = selection_scores(selection_counts(everything, everything.all(2), truth, y, valid))
    at = valid[:, :, None] & y.bool()[:, None, :]  # (B, T, C) labelled positions
    for m, name in enumerate(("audio", "visual")):
        base = truth[:, :, m][at].float().mean().item()
        assert s[f"{name}_precision"] == pytest.approx(base) and s[f"{name}_recall"] == 1.0
        assert s[f"{name}_base_rate"] == pytest.approx(base)
    both = truth.all(2)[at].float().mean().item()
    assert s["pair_precision"] == pytest.approx(both) and s["pair_base_rate"] == pytest.approx(both)


def test_nothing_selected_is_undefined_not_zero():
    y, valid, truth = random_truth(seed=2)
    none = torch.zeros_like(truth)
    s = selection_scores(selection_counts(none, none.all(2), truth, y, valid))
    assert math.isnan(s["audio_precision"]) and s["audio_recall"] == 0.0 and math.isnan(s["pair_precision"])


def test_segment_truth_on_llp_and_unav100_grids(tmp_path):
    """LLP's 1 s grid: the same as `segment_labels` (GT[c, onset:offset] = 1) for every synthetic
    validation video; UnAV-100's grid by hand: rows centred at 0.32 t + 0.48 s."""
    from avvp_dist.data.annotations import Event, segment_labels, segment_truth
    from avvp_dist.data.config import DataConfig
    from avvp_dist.data.stream import ShardStream
    from avvp_dist.datasets.llp import LLP_CLASSES, LLP_GRID
    from avvp_dist.datasets.unav100 import UNAV100_CLASSES, UNAV100_GRID
    from conftest import synth_and_shard

    synth_and_shard(tmp_path, train=4, val=12, test=2, per_shard=8)
    seen = 0
    for batch in ShardStream(tmp_path / "shards" / "val", DataConfig(batch_size=4, num_workers=0), train=False):
        for meta in batch.meta:
            got = segment_truth(meta, LLP_CLASSES, 10, LLP_GRID)
            want = segment_labels([Event(*e) for e in meta["events"]], LLP_CLASSES, 10).transpose(2, 0, 1)
            assert (got == want.astype(bool)).all()
            seen += int(got.any())
    assert seen >= 10
    meta = {"events": [["man speaking", "av", 1.0, 2.0]]}
    got = segment_truth(meta, UNAV100_CLASSES, 8, UNAV100_GRID)
    assert got[:, 0, 0].nonzero()[0].tolist() == [2, 3, 4] and (got[:, 1] == got[:, 0]).all() and got.sum() == 6
    assert segment_truth({"labels": ["Speech"]}, LLP_CLASSES, 10, LLP_GRID) is None
    # dense labels with no event for this video: all negative, as the evaluation's ground truth
    assert not segment_truth({"labels": ["Speech"], "events": []}, LLP_CLASSES, 10, LLP_GRID).any()

