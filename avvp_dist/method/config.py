"""MethodConfig: every part of the method, switchable for ablations, each default with its reason."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class WeakConfig:
    audio_smoothing: float = 1.0  # HAN: audio targets are the video labels as they are
    visual_smoothing: float = 0.9  # HAN: s_v = 0.9 y + 0.05, visual labels are noisier


@dataclass
class TeacherConfig:
    enabled: bool = True  # the EMA teacher is what makes pseudo labels possible
    decay: float = 0.999  # ~1000-step horizon: slow enough to denoise, fast enough to follow
    warmup: bool = True  # min(decay, (1 + k) / (10 + k)): early steps follow the student closely


@dataclass
class PseudoConfig:
    enabled: bool = True  # segment-level pseudo supervision from the teacher
    mode: Literal["adaptive", "topk"] = "adaptive"  # adaptive thresholds need no guess of event length
    gamma: float = 1.0  # threshold at the class's mean teacher probability over the video
    tau_min: float = 0.5  # never call a segment positive below chance
    rho: float = 0.3  # top-k: ~30% of segments, about the median LLP event length
    # segments of a labelled class with teacher P < tau_low that are not positive become
    # negatives, modality by modality (denoises the weak label of a class absent from one
    # modality). 0.3 from the accuracy study's tuning runs (docs/accuracy.md): pseudo
    # supervision alone vs the weak baseline, 2 seeds, Type@AV segment / event: tau_low 0.3
    # +0.1 +- 0.6 / +0.5 +- 0.2; 0.5: +0.1 +- 1.0 / +0.7 +- 0.7 (0.5 with weight 2: -0.5 / +0.4)
    tau_low: float = 0.3
    weight: float = 1.0  # lambda_p: same scale as the weak loss
    backend: Literal["auto", "torch", "triton"] = "auto"  # Triton on CUDA, torch on CPU


@dataclass
class CMAConfig:
    # cross-modal agreement at reliable segment-class pairs. Off by default since the accuracy
    # study (docs/accuracy.md, LLP format, 3 seeds): against the weak baseline, segment-level
    # Type@AV -0.45 +- 0.85 (agreement only) and -1.11 +- 0.57 (with the cross-video term),
    # where EMA pseudo supervision alone gave +0.33 +- 0.62; `method.cma.enabled=true` turns it on
    enabled: bool = False
    agreement: bool = True  # 1 - cos(e_a, e_v) over the pairs
    cross_video: bool = True  # symmetric InfoNCE against other classes' pairs from every rank
    temperature: float = 0.1  # a common contrastive temperature for unit-norm embeddings
    nce_weight: float = 0.5  # the InfoNCE term is larger in magnitude than the agreement term
    weight: float = 0.5  # lambda_c: an auxiliary term, below the main losses


@dataclass
class MethodConfig:
    weak: WeakConfig = field(default_factory=WeakConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    pseudo: PseudoConfig = field(default_factory=PseudoConfig)
    cma: CMAConfig = field(default_factory=CMAConfig)
    ramp_start: int = 100  # optimizer steps before pseudo/CMA terms start: the teacher is useless at step 0
    ramp_steps: int = 200  # then a linear ramp to full weight

    def ramp(self, step: int) -> float:
        """Weight of the pseudo and CMA terms at optimizer step `step`."""
        if step < self.ramp_start:
            return 0.0
        return 1.0 if self.ramp_steps <= 0 else min(1.0, (step - self.ramp_start + 1) / self.ramp_steps)

    @property
    def needs_teacher(self) -> bool:
        return self.teacher.enabled and (self.pseudo.enabled or self.cma.enabled)
