"""One video's parse as a list of events, from its model outputs: what `parse` prints."""
from __future__ import annotations

import numpy as np

from avvp_dist.data.timegrid import TimeGrid
from avvp_dist.eval.detection import detections
from avvp_dist.eval.protocol import Protocol, binarize
from avvp_dist.eval.runs import runs


def llp_events(P: np.ndarray, p: np.ndarray, p_a: np.ndarray, p_v: np.ndarray, classes: list[str],
               proto: Protocol, grid: TimeGrid) -> list[dict]:
    """Audio and visual events: runs of positive segments under the protocol, in seconds on the
    dataset's time grid.

    P: (T, 2, C); p, p_a, p_v: (C,). Score: mean segment probability x p_c.
    """
    pa, pv = binarize(P[None], p[None], p_a[None], p_v[None], proto)
    events = []
    for m, pred in ((0, pa[0]), (1, pv[0])):
        for c in np.flatnonzero(pred.any(1)):
            for a, b in runs(pred[c]):
                events.append({"class": classes[c], "modality": ("audio", "visual")[m],
                               "start": float(grid.seconds(a)), "end": float(grid.seconds(b)),
                               "score": round(float(P[a:b, m, c].mean() * p[c]), 4)})
    return events


def unav_events(P: np.ndarray, p: np.ndarray, p_a: np.ndarray, p_v: np.ndarray, classes: list[str],
                proto: Protocol, grid: TimeGrid) -> list[dict]:
    """Audio-visual events (UnAV-100 annotates only those): the scored detections the mAP
    ranks (`proto.detection`), best first, in seconds on the dataset's time grid."""
    return [{"class": classes[c], "modality": "audio-visual", "start": round(s, 2), "end": round(e, 2),
             "score": round(score, 4)}
            for c, s, e, score in detections(P, p, proto.detection, grid)]
