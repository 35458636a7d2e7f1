"""UnAV-100 detections: candidates from relative thresholds, soft-NMS, caps; the mAP they give."""
import math

import numpy as np
import pytest

from avvp_dist.data.datasets import data_spec
from avvp_dist.data.timegrid import TimeGrid
from avvp_dist.eval.detection import DetectionConfig, detections, soft_nms
from avvp_dist.eval.protocol import protocol
from avvp_dist.eval.report import unav_report

GRID = data_spec("unav100").grid  # UnAV-100's official time grid: row t centred at 0.32 t + 0.48 s
ROWS = TimeGrid(1.0)  # rows as seconds: for the tests of the candidates, not of the grid


def report(videos, classes):
    return unav_report(_pred(videos), classes, protocol("han"), grid=GRID)


def gated_events(P, p, thr=0.5):
    """The protocol this replaces: rows with P_a, P_v and p_c all >= 0.5, as runs."""
    pos = (P[:, 0] >= thr) & (P[:, 1] >= thr) & (p >= thr)[None]
    return [(c, a) for c in range(P.shape[2]) for a in np.flatnonzero(pos[:, c])]


def _pred(videos):
    """gathered-predictions dict for unav_report from [(key, P, p, events)]."""
    return {"keys": [v[0] for v in videos], "P": [v[1] for v in videos], "p": np.stack([v[2] for v in videos]),
            "meta": [{"vid": v[0], "duration": GRID.seconds(len(v[1])), "labels": [], "events": v[3]} for v in videos]}


def test_a_weak_model_that_ranks_well_gets_no_gated_event_but_full_map():
    T, C = 20, 3
    classes = ["a", "b", "c"]
    videos = []
    for key, (lo, hi), other in (("v0", (2, 6), 0.05), ("v1", (10, 15), 0.08)):
        P = np.full((T, 2, C), 0.1)
        P[lo:hi, :, 1] = 0.4  # class b, heard and seen, but never above 0.5
        P[:, :, 0] = other  # a flat distractor class
        p = np.array([0.2, 0.3, 0.05])
        videos.append((key, P, p, [["b", "av", GRID.seconds(lo), GRID.seconds(hi)]]))
        assert gated_events(P, p) == []  # the old protocol emits nothing: mAP 0 whatever the ranking
    rep = report(videos, classes)
    # per video: class b's run is one detection (every fraction 0.1..0.9 of its peak cuts the same run),
    # scored (inner 0.16 - outer 0.01) x 0.3; the flat classes have no contrast and no detection
    best = rep["events"]["v0"][0]
    assert best[0] == 1 and best[1:3] == (pytest.approx(GRID.seconds(2)), pytest.approx(GRID.seconds(6)))
    assert best[3] == pytest.approx((0.4 * 0.4 - 0.1 * 0.1) * 0.3)
    assert {c for c, *_ in rep["events"]["v0"]} == {1}
    assert all(rep["metrics"][f"map@{t:.1f}"] == pytest.approx(100.0) for t in np.arange(1, 10) / 10)


def test_perfect_predictions_on_the_row_grid_score_100_at_every_tiou():
    rng = np.random.default_rng(0)
    C, classes, videos = 6, [f"c{i}" for i in range(6)], []
    for v in range(12):
        T = int(rng.integers(30, 120))
        P, p, events = np.zeros((T, 2, C)), np.zeros(C), []
        for c in rng.choice(C, size=2, replace=False):
            a = int(rng.integers(0, T - 10))
            b = int(rng.integers(a + 1, min(T, a + 40)))
            P[a:b, :, c], p[c] = 1.0, 1.0
            events.append([classes[c], "av", GRID.seconds(a), GRID.seconds(b)])
            if b + 5 < T and rng.random() < 0.5:  # a second, separate event of the same class
                P[b + 3:b + 5, :, c] = 1.0
                events.append([classes[c], "av", GRID.seconds(b + 3), GRID.seconds(b + 5)])
        videos.append((f"v{v:02d}", P, p, events))
    m = report(videos, classes)["metrics"]
    assert all(m[f"map@{t:.1f}"] == pytest.approx(100.0) for t in np.arange(1, 10) / 10)
    assert m["map_mean"] == pytest.approx(100.0)


def test_soft_nms_by_hand():
    segs = np.array([[0.0, 10.0], [5.0, 15.0], [20.0, 25.0]])
    kept, scores = soft_nms(segs, np.array([0.9, 0.8, 0.5]), sigma=0.4, min_score=0.001)
    # [5, 15) overlaps the best with tIoU 5 / 15 and decays by exp(-(1/3)^2 / 0.4); [20, 25) does not overlap
    assert scores.tolist() == pytest.approx([0.9, 0.8 * math.exp(-(1 / 9) / 0.4), 0.5])
    assert kept.tolist() == [[0.0, 10.0], [5.0, 15.0], [20.0, 25.0]]
    _, high = soft_nms(segs, np.array([0.9, 0.8, 0.5]), sigma=0.4, min_score=0.7)
    assert high.tolist() == pytest.approx([0.9])  # the decayed 0.606 falls under min_score


def test_candidates_top_k_classes_fractions_contrast_and_cap():
    T = 10
    P = np.zeros((T, 2, 3))
    P[:, :, 0] = np.sqrt([0.2, 0.2, 1, 1, 0.6, 0.6, 0.6, 0.2, 0.2, 0.2])[:, None]  # AV activation = squares
    P[:, :, 1] = 0.5
    p = np.array([0.5, 0.9, 0.1])
    one = detections(P, p, DetectionConfig(top_k_classes=1), ROWS)
    assert {d[0] for d in one} == {1}  # only the top class by p
    assert {d[0] for d in detections(P, p, DetectionConfig(), ROWS)} == {0, 1}  # 0: every class (2 has no contrast)
    dets = detections(P, p, DetectionConfig(top_k_classes=2, fractions=(0.5, 0.9), score="mean"), ROWS)
    runs0 = sorted((round(s), round(e)) for c, s, e, _ in dets if c == 0)
    assert runs0 == [(2, 4), (2, 7)]  # >= 0.9 of the peak: rows 2-3; >= 0.5: rows 2-6
    contrast = detections(P, p, DetectionConfig(top_k_classes=2, fractions=(0.9,), score="contrast"), ROWS)
    (c0,) = [d for d in contrast if d[0] == 0]
    assert c0[3] == pytest.approx((1.0 - (0.2 + 0.6) / 2) * 0.5)  # inner 1.0, one row either side: 0.2 and 0.6
    assert len(detections(P, p, DetectionConfig(top_k_classes=3, max_per_video=2, score="mean"), ROWS)) == 2
    with pytest.raises(ValueError, match="top_k_classes"):
        DetectionConfig(top_k_classes=-1)


def test_detection_settings_come_from_the_config():
    from avvp_dist.config import load_config

    cfg = load_config(None, ["eval.detection.top_k_classes=5", "eval.detection.fractions=[0.2, 0.6]"])
    assert cfg.eval.detection.top_k_classes == 5 and cfg.eval.detection.fractions == (0.2, 0.6)


def plain_detections(P, p, cfg, grid, duration):
    """Every class searched, the plain way: runs at each fraction (each once), scored by their
    mean and the rows around them, Gaussian soft-NMS per class, the best `max_per_video`."""
    act, out = P[:, 0] * P[:, 1], []
    for c in range(P.shape[2]):
        a_c, found = act[:, c], {}
        for f in cfg.fractions:
            on = np.concatenate([[False], a_c >= f * a_c.max(), [False]]).astype(int)
            for a, b in zip(np.flatnonzero(np.diff(on) == 1), np.flatnonzero(np.diff(on) == -1)):
                m = max(1, (b - a) // 4)
                around = np.concatenate([a_c[max(0, a - m):a], a_c[b:b + m]])
                seg = grid.segment(int(a), int(b), duration)
                if seg[1] > seg[0]:
                    found.setdefault(seg, (a_c[a:b].mean() - (around.mean() if len(around) else 0)) * p[c])
        segs, scores = [list(s) for s in found], list(found.values())
        while scores:
            i = int(np.argmax(scores))
            if scores[i] < cfg.min_score:
                break
            (s, e), v = segs.pop(i), scores.pop(i)
            out.append((c, s, e, v))
            for j, (s2, e2) in enumerate(segs):
                inter = max(0.0, min(e, e2) - max(s, s2))
                scores[j] *= math.exp(-(inter / ((e - s) + (e2 - s2) - inter)) ** 2 / cfg.nms_sigma)
    return sorted(out, key=lambda d: -d[3])[:cfg.max_per_video]


@pytest.mark.parametrize("smooth", [1, 5])
def test_the_pruned_search_finds_what_searching_every_class_finds(smooth):
    """`detections` skips the classes that cannot reach the best `max_per_video`: the same
    detections as a plain search of every class (100 classes, noisy and smooth activations)."""
    rng = np.random.default_rng(smooth)
    for _ in range(4):
        T = int(rng.integers(20, 120))
        P = rng.uniform(0, 1, (T + smooth, 2, 100))
        P = np.stack([P[i:i + T] for i in range(smooth)]).mean(0)
        p = rng.uniform(0, 1, 100) ** 3
        cfg = DetectionConfig(max_per_video=60)
        ours = detections(P, p, cfg, GRID, GRID.seconds(T) - 0.2)
        plain = plain_detections(P, p, cfg, GRID, GRID.seconds(T) - 0.2)
        assert len(ours) == len(plain) == 60
        assert np.allclose(np.array(ours), np.array(plain), atol=1e-9)
