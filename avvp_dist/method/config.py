"""MethodConfig: every part of the method, switchable for ablations, each default with its reason.

The reasons are one line each; the measurements behind them (tuning seeds, tables) are in
docs/accuracy.md, "Where each default comes from", never here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class WeakConfig:
    audio_smoothing: float = 1.0  # HAN: audio targets are the video labels as they are
    visual_smoothing: float = 0.9  # HAN: s_v = 0.9 y + 0.05, visual labels are noisier
    # the three BCE terms' weights (HAN: 1, 1, 1; CoLeaF's main.py: video 2, audio 2, visual 1)
    video_weight: float = 1.0
    audio_weight: float = 1.0
    visual_weight: float = 1.0


@dataclass
class TeacherConfig:
    enabled: bool = True  # the EMA teacher is what makes pseudo labels possible
    # keep (update, evaluate, checkpoint) the teacher even when no term reads it: what weight
    # averaging alone gives; off, a run whose terms are all off builds no teacher
    keep: bool = False
    decay: float = 0.999  # horizon 1 / (1 - decay) = 1,000 steps
    # min(decay, (1 + k) / (10 + k)) at update k: a horizon of (10 + k) / 9 steps until it reaches
    # 1 / (1 - decay) (step 8,990 for 0.999): early steps follow the student closely
    warmup: bool = True
    # foreach: torch._foreach_lerp_ over the parameters (timm's ModelEmaV3), fp32 copies of a
    # low-precision student; flat: the student's parameters made views into flat buffers (only
    # then) and the teacher laid out the same way, one lerp or Triton kernel per contiguous run.
    # foreach is the faster on CPU (benchmarks/RESULTS.md); flat is timed beside it on GPUs.
    ema: Literal["foreach", "flat"] = "foreach"
    backend: Literal["auto", "torch", "triton"] = "auto"  # the flat update's kernel: Triton on CUDA, torch on CPU


@dataclass
class PseudoConfig:
    enabled: bool = True  # segment-level pseudo supervision from the teacher
    # teacher: the EMA teacher's masks (the paper); external: segment labels stored in the shards
    # (e.g. VALOR's CLIP/CLAP pseudo-labels, data.external_labels), positive where they say 1 (and
    # the class is labelled), every other valid position a reliable negative; both: positive where
    # either is, reliable where the teacher's mask is or the external label is positive
    source: Literal["teacher", "external", "both"] = "teacher"
    mode: Literal["adaptive", "topk"] = "adaptive"  # adaptive thresholds need no guess of event length
    gamma: float = 1.0  # threshold at the class's mean teacher probability over the video
    tau_min: float = 0.5  # never call a segment positive below chance
    rho: float = 0.3  # top-k: ~30% of segments, about the median LLP event length
    # labelled-class segments below tau_low (and not positive) become negatives, per modality (ours)
    tau_low: float = 0.3  # as good as 0.5 in the tuning runs, and safer at higher pseudo weights
    # every valid segment of a class the video is not labelled with is a reliable negative (ours; the
    # paper's masked BCE counts the selected positions only)
    absent_negatives: bool = True
    # mean: the masks come from the teacher's audio and visual probabilities averaged, one mask per
    # (segment, class) supervising both modalities (the paper); none: each modality's own (ours)
    fuse: Literal["none", "mean"] = "none"
    weight: float = 1.0  # lambda_p: same scale as the weak loss
    backend: Literal["auto", "torch", "triton"] = "auto"  # the mask kernel: Triton on CUDA, torch on CPU


@dataclass
class RefineConfig:
    # modality label refinement by cross-video swap (method/refine.py, after Wu & Yang 2021;
    # ours to add, not the seed paper's); one more teacher forward; needs the teacher
    enabled: bool = True  # the largest single gain of the LLP-format tuning runs
    ratio_visual: float = 0.3  # drop when swapped p_v < 0.3 x own p_v; relative: an absolute one feeds on itself
    ratio_audio: float = 0.0  # audio labels kept (HAN leaves them unsmoothed); refining them lost audio F1


@dataclass
class CMAConfig:
    # cross-modal agreement at reliable segment-class pairs
    enabled: bool = True  # on at a small weight: the best of the tuning runs
    agreement: bool = True  # 1 - cos(e_a, e_v) over the pairs (the paper's CMA)
    # class_aware: e_m(t, c) = normalise((W_m h_m(t)) * u_c), one embedding per pair (our reading of
    # "class-aware"); segment: the encoder states h_a(t), h_v(t) themselves, once per valid pair
    embedding: Literal["class_aware", "segment"] = "class_aware"
    cross_video: bool = True  # symmetric InfoNCE against other classes' pairs from every rank (ours)
    temperature: float = 0.1  # a common contrastive temperature for unit-norm embeddings
    nce_weight: float = 0.5  # the InfoNCE term is larger in magnitude than the agreement term
    weight: float = 0.1  # lambda_c: the best of the weights tried; a large one pulls the AV scores down


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
    def masks_from_teacher(self) -> bool:
        """Whether the pseudo / CMA masks need the teacher's (external labels alone need none)."""
        external_only = self.pseudo.enabled and self.pseudo.source == "external"
        return (self.pseudo.enabled or self.cma.enabled) and not external_only

    @property
    def needs_teacher(self) -> bool:
        return self.teacher.enabled and (self.teacher.keep or self.refine.enabled or self.masks_from_teacher)

    @property
    def needs_external(self) -> bool:
        """Whether a term reads the shards' external segment labels."""
        return self.pseudo.enabled and self.pseudo.source != "teacher"
