"""The training objective: weak + lambda_p * pseudo + lambda_c * CMA, normalised across ranks.

Normalisation contract (DESIGN.md): the weak loss is a mean over the local micro-batch;
the pseudo and CMA terms are sums over local positions divided by the *global* count of
their positions in the micro-step, times the world size, so that the gradient average
DeepSpeed takes over ranks equals the gradient of one process holding the global batch.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from avvp_dist.data.batch import Batch
from avvp_dist.distributed.collectives import all_reduce_sum, gather_rows, world_size
from avvp_dist.kernels import PseudoMasks, pseudo_masks
from avvp_dist.kernels.masks import topk_counts
from avvp_dist.method.config import MethodConfig
from avvp_dist.method.external import external_masks, union_masks
from avvp_dist.method.losses import agreement_sum, infonce_sum, pseudo_loss_sum, weak_loss, weak_references
from avvp_dist.method.refine import partner_index, refine_labels, refine_masks
from avvp_dist.method.telemetry import step_telemetry
from avvp_dist.model.output import ModelOutput
from avvp_dist.profiling import NULL_TIMER


@dataclass
class StepLosses:
    """One micro-step's objective on this rank.

    loss: () the total to backpropagate (weak + lambda_p pseudo + lambda_c CMA);
    terms: {name: () tensor}, detached, for logging (`weak`, `pseudo`, `cma`, the position
    and pair counts, the ramp, ...), never backpropagated.
    """

    loss: torch.Tensor
    terms: dict[str, torch.Tensor]
    # for telemetry against a truth the batch may carry: the masks the pseudo / CMA terms used,
    # the student's probabilities (B, T, 2, C), detached
    masks: PseudoMasks | None = None
    P_student: torch.Tensor | None = None


def teacher_masks(P_teacher: torch.Tensor, y: torch.Tensor, valid: torch.Tensor, cfg: MethodConfig) -> PseudoMasks:
    """Pseudo masks and CMA pairs from teacher probabilities (B, T, 2, C).

    With `pseudo.fuse=mean` (the paper) the pseudo positives come from the audio and visual
    probabilities averaged, the same mask for both modalities, while a CMA pair still needs
    each modality above its own threshold; with `none` every mask is per modality.
    """
    pc = cfg.pseudo
    P = P_teacher.detach().float()
    k = topk_counts(valid, pc.rho) if pc.mode == "topk" else None
    own = pseudo_masks(P, y, valid, pc.mode, pc.gamma, pc.tau_min, k, pc.tau_low, pc.backend, pc.absent_negatives)
    if pc.fuse == "none":
        return own
    fused = pseudo_masks(P.mean(2, keepdim=True).expand_as(P), y, valid, pc.mode, pc.gamma, pc.tau_min, k,
                         pc.tau_low, pc.backend, pc.absent_negatives)
    return PseudoMasks(fused.pos, fused.reliable, own.pairs)


def method_losses(out: ModelOutput, y: torch.Tensor, valid: torch.Tensor, masks: PseudoMasks | None,
                  embed: nn.Module | None, cfg: MethodConfig, ramp: float, timer=NULL_TIMER,
                  y_mod: torch.Tensor | None = None) -> StepLosses:
    """Loss terms of one micro-step on this rank.

    out: the student's outputs, probabilities in fp32; y: (B, C); valid: (B, T); masks: from the teacher (None when the pseudo
    and CMA terms are off); embed: the model's class-aware embedding head. Every rank
    issues the same collectives whatever its number of positions. Returns the total to
    backpropagate and each term, detached, for logging. timer: a
    `profiling.StepTimer` for the throughput benchmark (sections `cma`). y_mod: (B, 2, C)
    refined audio / visual labels (`refine.py`): the weak loss's modality terms use them,
    and `masks` must already be gated by them.
    """
    y_a, y_v = (None, None) if y_mod is None else y_mod.unbind(1)
    wc = cfg.weak
    weights = (wc.video_weight, wc.audio_weight, wc.visual_weight)
    weak = weak_loss(out.p, out.p_a, out.p_v, y, wc.audio_smoothing, wc.visual_smoothing, y_a, y_v, weights)
    terms = {"weak": weak.detach()}
    # what the weak term would be with perfect predictions (floor) and with the base rates only (prior)
    terms["weak_floor"], terms["weak_prior"] = weak_references(y, wc.audio_smoothing, wc.visual_smoothing, y_a, y_v,
                                                               weights)
    total = weak
    w = world_size()
    if masks is not None and cfg.pseudo.enabled:
        count = all_reduce_sum(masks.reliable.sum().to(torch.float64))
        pseudo = pseudo_loss_sum(out.P, masks.pos, masks.reliable)
        pseudo = pseudo * (w / count.clamp_min(1)).to(pseudo.dtype)  # on the device: no host read
        total = total + ramp * cfg.pseudo.weight * pseudo
        terms["pseudo"], terms["pseudo_positions"] = pseudo.detach(), count
    if masks is not None and cfg.cma.enabled and (embed is not None or cfg.cma.embedding == "segment"):
        with timer.section("cma"):
            total = total + _cma_terms(out, masks, embed, cfg, ramp, w, terms)
    return StepLosses(total, terms)


def _pair_embeddings(out: ModelOutput, b: torch.Tensor, t: torch.Tensor, c: torch.Tensor, embed: nn.Module | None,
                     cfg: MethodConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, E) unit audio and visual embeddings at the pairs (b, t, c): class-aware ones from the
    embedding head, or (`cma.embedding=segment`) the encoder states themselves."""
    if cfg.cma.embedding == "segment":
        return F.normalize(out.h_a[b, t].float(), dim=-1), F.normalize(out.h_v[b, t].float(), dim=-1)
    dtype = next(embed.parameters()).dtype  # under autocast the states are bf16 and the head fp32
    e_a, e_v = embed(out.h_a[b, t].to(dtype), out.h_v[b, t].to(dtype), c)
    return e_a.float(), e_v.float()


def _cma_terms(out: ModelOutput, masks: PseudoMasks, embed: nn.Module | None, cfg: MethodConfig, ramp: float,
               w: int, terms: dict) -> torch.Tensor:
    """The weighted CMA term (agreement and cross-video InfoNCE) at the reliable pairs."""
    b, t, c = masks.pairs.nonzero(as_tuple=True)
    e_a, e_v = _pair_embeddings(out, b, t, c, embed, cfg)
    # on the device of the data: a CPU tensor handed to an NCCL collective fails
    count = all_reduce_sum(torch.tensor(float(len(c)), dtype=torch.float64, device=e_a.device))
    scale = (w / count.clamp_min(1)).to(torch.float32)  # on the device: no host read
    cma = torch.zeros((), device=e_a.device)
    if cfg.cma.agreement:
        agree = agreement_sum(e_a, e_v) * scale
        cma = cma + agree
        terms["cma_agreement"] = agree.detach()
    if cfg.cma.cross_video:
        both, (all_cls,), all_valid, offset = gather_rows(torch.cat([e_a, e_v], dim=1), c)
        all_a, all_v = both.split(e_a.shape[1], dim=1)
        nce = infonce_sum(e_a, e_v, c, all_a, all_v, all_cls, all_valid, offset, cfg.cma.temperature) * scale
        # every rank's loss touches the gathered block, so every rank joins its backward collective
        nce = nce + 0.0 * both.sum()
        cma = cma + cfg.cma.nce_weight * nce
        terms["cma_nce"] = nce.detach()
    terms["cma"], terms["cma_pairs"] = cma.detach(), count
    return ramp * cfg.cma.weight * cma


def modality_labels(teacher: nn.Module, teacher_out: ModelOutput, valid: torch.Tensor, y: torch.Tensor,
                    cfg: MethodConfig) -> torch.Tensor:
    """Refined per-modality labels (B, 2, C) from the teacher's cross-video swap forwards.

    teacher: the fp32 teacher (an `AVVPModel`); teacher_out: its outputs on the batch itself,
    with the projected inputs z_a, z_v, from which the swapped passes start; valid: (B, T);
    y: (B, C). Each video is paired with `partner_index(y)`; one swapped pass per refined
    modality (ratio > 0) runs on the segments valid in both videos, and of it only the
    encoder's last layer and the head of that modality (`AVVPModel.swapped_modality_level`;
    equal to the whole swapped forward, tests/test_refine.py). Without a partner (B = 1)
    the labels stay y.
    """
    ratio = (cfg.refine.ratio_audio, cfg.refine.ratio_visual)
    partner = partner_index(y)
    if partner is None or max(ratio) <= 0:
        return torch.stack([y, y], dim=1)
    both = valid & valid[partner]
    p_own = teacher_out.modality_level().float()
    p_swap = p_own.clone()  # rows of an unrefined modality never drop
    z_a, z_v = teacher_out.z_a, teacher_out.z_v
    swapped = ((z_a, z_v[partner]), (z_a[partner], z_v))  # keep the audio track, keep the visual track
    for m in range(2):
        if ratio[m] > 0:
            with torch.no_grad():
                p_swap[:, m] = teacher.swapped_modality_level(*swapped[m], both, m).float()
    return refine_labels(y, partner, p_own, p_swap, ratio)


def _masks(out: ModelOutput, t_out: ModelOutput | None, batch: Batch, y_mod: torch.Tensor | None,
           cfg: MethodConfig) -> PseudoMasks | None:
    """Pseudo positives and CMA pairs from the teacher (or the student's own detached
    predictions), the external segment labels, or both; gated by the refined labels."""
    masks = None
    if cfg.masks_from_teacher:
        P = t_out.P if t_out is not None else out.P.detach()
        masks = teacher_masks(P, batch.labels, batch.mask, cfg)
    if cfg.needs_external:
        ext = external_masks(batch.segment_labels, batch.labels, batch.mask)
        masks = ext if masks is None else union_masks(masks, ext)
    if y_mod is not None:
        masks = refine_masks(masks, batch.labels, y_mod, batch.mask)
    return masks


def step_losses(student: nn.Module, teacher: nn.Module | None, batch: Batch, cfg: MethodConfig, step: int,
                timer=NULL_TIMER, embed: nn.Module | None = None, telemetry: bool = True) -> StepLosses:
    """One micro-step: student forward, teacher masks (once the ramp has started), loss terms.

    student: the model, or its wrapper (a DeepSpeed engine) whose forward is the model's.
    teacher: the fp32 EMA teacher in eval mode, run without gradient, or None (masks then
    come from the student's own detached predictions). batch: on the training device,
    features in the student's precision (`Batch.to`); with `method.pseudo.source` external or
    both it carries `segment_labels`. step: optimizer steps taken; all ranks share it, so they
    all take the same branches and collectives. embed: the class-aware embedding head the CMA
    term reads (the model's `embed`; None: `student.embed`). timer: sections
    `student_forward`, `teacher_forward`, `masks`, `cma` for the throughput benchmark.
    telemetry: add `method.telemetry.step_telemetry`'s terms (the trainer asks on logged steps).
    The one place where precision changes: student probabilities and teacher inputs go to fp32.
    """
    x, valid, y = batch.features, batch.mask, batch.labels
    with timer.section("student_forward"):
        out = student(x, valid).float()
    ramp = cfg.ramp(step)
    masks = y_mod = t_out = None
    if ramp > 0 and teacher is not None and (cfg.masks_from_teacher or cfg.refine.enabled):
        with timer.section("teacher_forward"):
            x32 = {k: v.float() for k, v in x.items()}
            with torch.no_grad():
                t_out = teacher(x32, valid)
            if cfg.refine.enabled:
                y_mod = modality_labels(teacher, t_out, valid, y, cfg)
    if ramp > 0 and (cfg.pseudo.enabled or cfg.cma.enabled):
        with timer.section("masks"):
            masks = _masks(out, t_out, batch, y_mod, cfg)
    if cfg.cma.enabled and embed is None and cfg.cma.embedding == "class_aware":
        embed = student.embed
    result = method_losses(out, y, valid, masks, embed if cfg.cma.enabled else None, cfg, ramp, timer, y_mod)
    if y_mod is not None:  # share of the labels dropped from each modality, for the log
        dropped = (y.bool()[:, None] & ~y_mod.bool()).sum((0, 2)) / y.sum().clamp_min(1)
        result.terms["refined_audio"], result.terms["refined_visual"] = dropped
    result.terms["ramp"] = torch.tensor(ramp)
    if telemetry:  # what the masks select and how saturated the probabilities are, on this micro-batch
        result.terms.update(step_telemetry(out.P, t_out.P if t_out is not None else None, masks, y, valid))
    result.masks, result.P_student = masks, out.P.detach()
    return result
