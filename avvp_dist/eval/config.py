"""EvalConfig: how evaluation turns model outputs into predictions, beyond the protocol preset."""
from __future__ import annotations

from dataclasses import dataclass, field

from avvp_dist.eval.detection import DetectionConfig


@dataclass
class EvalConfig:
    # UnAV-100's scored detections (eval/detection.py); `train.protocol` names the thresholds of the F1 metrics
    detection: DetectionConfig = field(default_factory=DetectionConfig)
