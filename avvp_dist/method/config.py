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
class RefineConfig:
    # modality-aware label refinement by cross-video modality swap (method/refine.py, after
    # Wu & Yang 2021): the teacher scores each video's visual track with the audio track of
    # a partner video lacking the class; a label whose p_v collapses there is dropped from
    # the visual modality (weak-loss target and pseudo masks). Costs one more teacher forward;
    # needs the teacher (with method.teacher.enabled=false the labels stay as they are).
    # On by default: the largest single gain in the accuracy study's tuning runs
    # (docs/accuracy.md; LLP format, tuning seeds 10-12, disjoint from the study's seeds):
    # pseudo supervision alone +0.9 segment Type@AV, with refinement +2.9 +- 0.8; confirmed
    # on the study's seeds 0-2: +0.33 +- 0.62 without, +1.71 +- 0.64 with (event: +0.59 / +2.21)
    enabled: bool = True
    # relative, not absolute: an absolute threshold feeds on itself (dropped labels lower p_v,
    # which drops more; 0.2 dropped ~55% of visual labels and lost 12.6 segment Type@AV);
    # ratio 0.3: +2.9, 0.4: +1.5 (tuning seeds 10-11)
    ratio_visual: float = 0.3  # drop when swapped p_v < 0.3 x the teacher's own p_v
    # 0: audio labels are kept, as HAN keeps them unsmoothed (s_a = y); ratio 0.3 on audio
    # lost 26.6 points of segment-level audio F1 in the tuning runs
    ratio_audio: float = 0.0


@dataclass
class CMAConfig:
    # cross-modal agreement at reliable segment-class pairs: on, at a small weight. Tuning
    # runs (LLP format, seeds 10-12, with pseudo supervision and refinement), segment Type@AV
    # against the weak baseline by lambda_c: 0 +2.9 +- 0.8, 0.05 +3.6 +- 0.4, 0.1 +4.3 +- 0.4,
    # 0.2 +3.5 +- 0.9, 0.5 (seeds 10-11) +1.5 +- 1.1; the first study at 0.5 lowered the score.
    # On the study's seeds 0-2 at 0.1 it is about neutral (full method vs without CMA:
    # -0.13 / -0.04 segment / event Type@AV); on UnAV-100-format data CMA alone helps (+1.6 to +2.1 mAP)
    enabled: bool = True
    agreement: bool = True  # 1 - cos(e_a, e_v) over the pairs
    cross_video: bool = True  # symmetric InfoNCE against other classes' pairs from every rank
    temperature: float = 0.1  # a common contrastive temperature for unit-norm embeddings
    nce_weight: float = 0.5  # the InfoNCE term is larger in magnitude than the agreement term
    weight: float = 0.1  # lambda_c: an auxiliary term; 0.5 pulled the audio-visual scores down


@dataclass
class MethodConfig:
    weak: WeakConfig = field(default_factory=WeakConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    pseudo: PseudoConfig = field(default_factory=PseudoConfig)
    refine: RefineConfig = field(default_factory=RefineConfig)
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
        return self.teacher.enabled and (self.pseudo.enabled or self.cma.enabled or self.refine.enabled)
