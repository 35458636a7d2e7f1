"""UnAV-100's detection mAP against the official evaluator's numbers (tests/golden/), and the
time grid against a plain implementation of the official code's mapping."""
import json
from pathlib import Path

import numpy as np
import pytest

from avvp_dist.data.datasets import data_spec
from avvp_dist.data.timegrid import TimeGrid
from avvp_dist.eval.detection import DetectionConfig, detections
from avvp_dist.eval.unav_metrics import unav_map
from unav_golden_inputs import NUM_CLASSES, as_ours, golden_inputs

GOLDEN = json.loads((Path(__file__).parent / "golden" / "unav_metric_golden.json").read_text())


def test_our_map_is_the_official_evaluators_to_1e_6():
    preds, gts = as_ours(*golden_inputs(GOLDEN["seed"]))
    ours = unav_map(preds, gts, NUM_CLASSES)
    for t, official in zip(GOLDEN["tiou"], GOLDEN["map"]):
        assert ours[f"map@{t:.1f}"] / 100 == pytest.approx(official, abs=1e-6), t
    assert ours["map_mean"] / 100 == pytest.approx(GOLDEN["average_map"], abs=1e-6)


# a plain implementation of the official mapping (UnAV's libs/: feat_stride 8, num_frames 24, fps 25)
STRIDE, FRAMES, FPS = 8, 24, 25


def official_grid(seconds: float) -> float:
    """An annotation's time as a grid coordinate (libs/datasets/unav100.py)."""
    return (seconds * FPS - 0.5 * FRAMES) / STRIDE


def official_seconds(grid: float, duration: float) -> float:
    """A grid coordinate as seconds, clamped to the video (multimodal_meta_archs.py, postprocessing)."""
    return min(max((grid * STRIDE + 0.5 * FRAMES) / FPS, 0.0), duration)


def perfect(events: list[tuple[int, float, float]], rows: int) -> np.ndarray:
    """(rows, 2, C) probabilities 1 at the grid points the official training labels mark
    (grid coordinate within [official_grid(start), official_grid(end)]), else 0.02."""
    P = np.full((rows, 2, NUM_CLASSES), 0.02)
    for c, s, e in events:
        on = (np.arange(rows) >= official_grid(s)) & (np.arange(rows) <= official_grid(e))
        P[on, :, c] = 1.0
    return P


def test_the_grid_is_the_official_one():
    grid = data_spec("unav100").grid
    t = np.arange(50)
    assert np.allclose(grid.centres(50), (t * STRIDE + 0.5 * FRAMES) / FPS)  # grid point t
    # a run of grid points a..b-1 spans half a stride either side: [a - 1/2, b - 1/2] on the grid
    for a, b in ((0, 3), (5, 11), (40, 41)):
        assert grid.segment(a, b, 100.0) == pytest.approx((official_seconds(a - 0.5, 100.0),
                                                           official_seconds(b - 0.5, 100.0)))
    assert grid.segment(0, 3, 0.5) == (0.32, 0.5)  # clamped to the video, as the official code does


def test_perfect_predictions_score_what_the_official_mapping_scores():
    """Annotations at arbitrary seconds; predictions perfect on the official grid. Our
    detections score what the same runs of grid points give when a plain implementation of
    the official mapping turns them into seconds."""
    rng = np.random.default_rng(7)
    grid, cfg = data_spec("unav100").grid, DetectionConfig()
    ours, plain, gts = {}, {}, {}
    for v in range(30):
        rows = int(rng.integers(15, 90))
        duration = 0.32 * rows + 0.64  # the last row ends inside the video: no clamping at the end
        events = [(int(c), s, min(duration, s + float(rng.uniform(0.8, 8)))) for c, s in
                  zip(rng.choice(NUM_CLASSES, 4, replace=False), rng.uniform(0, duration - 1, 4))]
        P, p = perfect(events, rows), np.full(NUM_CLASSES, 0.5)
        gts[f"v{v}"] = events
        ours[f"v{v}"] = detections(P, p, cfg, grid, duration)
        # the same candidates as runs of grid points [a, b) (a grid of one unit per row, from 0)
        runs = detections(P, p, cfg, TimeGrid(1.0))
        plain[f"v{v}"] = [(c, official_seconds(a - 0.5, duration), official_seconds(b - 0.5, duration), score)
                          for c, a, b, score in runs]
    a, b = unav_map(ours, gts, NUM_CLASSES), unav_map(plain, gts, NUM_CLASSES)
    assert a == pytest.approx(b, abs=1e-9)
    assert a["map@0.5"] > 90  # every class of a video is a candidate (4 classes per video here)


def test_a_perfect_event_on_the_grid_is_found_at_tiou_0_9_and_was_not_before():
    """An event of rows 5..10 ([1.92, 3.84) s): perfect predictions give it back exactly. The
    mapping before (row t at [0.32 t, 0.32 t + 0.32)) put it 0.32 s early: tIoU 0.71."""
    events = [(3, 1.92, 3.84)]
    P, p = perfect(events, 40), np.full(NUM_CLASSES, 0.5)
    for grid, found in ((data_spec("unav100").grid, 100.0), (TimeGrid(0.32), 0.0)):
        det = detections(P, p, DetectionConfig(), grid, 12.8)
        assert unav_map({"v": det}, {"v": events}, NUM_CLASSES)["map@0.9"] == pytest.approx(found)


def test_every_class_is_a_candidate_by_default_and_top_k_stays_an_option():
    events = [(c, 1.0 + 2 * c, 2.5 + 2 * c) for c in range(5)]  # five classes in one video
    P, p = perfect(events, 50), np.linspace(0.9, 0.5, NUM_CLASSES)
    grid = data_spec("unav100").grid
    every = {c for c, *_ in detections(P, p, DetectionConfig(), grid, 16.0)}
    top3 = {c for c, *_ in detections(P, p, DetectionConfig(top_k_classes=3), grid, 16.0)}
    assert set(range(5)) <= every and top3 == {0, 1, 2}
