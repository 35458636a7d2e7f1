"""The teacher's selection against segment-level truth, at a validation or a test report:
how often its pseudo positives and CMA pairs are right, per modality and class, beside what
the same rule selects from the student's own probabilities (so that the teacher's value over
the student is one number: `gain_f1`, teacher F1 minus student F1 of the pseudo positives)."""
from __future__ import annotations

import torch

from avvp_dist.data.annotations import segment_truth
from avvp_dist.eval.datasets import DatasetSpec
from avvp_dist.method.config import MethodConfig
from avvp_dist.method.objective import teacher_masks
from avvp_dist.method.telemetry import MODALITIES, selection_counts, selection_scores


def _labels(meta: dict, classes: list[str]) -> torch.Tensor:
    index = {c: k for k, c in enumerate(classes)}
    y = torch.zeros(len(classes))
    y[[index[c] for c in meta["labels"]]] = 1
    return y


def _add(total: dict | None, counts: dict) -> dict:
    return counts if total is None else {k: total[k] + v for k, v in counts.items()}


def selection_quality(result: dict, spec: DatasetSpec, cfg: MethodConfig) -> dict | None:
    """For an `eval.run.evaluate` result holding `teacher` and `student`: micro-averaged scores
    of each model's masks (`teacher_masks`: the training rule) against the truth of every
    video with dense labels (`segment_truth` on the dataset's time grid), per-class precision
    and recall of the teacher's, and `gain_f1` per modality. None without both models or
    without dense labels."""
    reps, classes = result["models"], result["classes"]
    if not {"teacher", "student"} <= set(reps):
        return None
    counts: dict[str, dict | None] = {"teacher": None, "student": None}
    t_pred = reps["teacher"]["predictions"]
    for i, meta in enumerate(t_pred["meta"]):
        truth = segment_truth(meta, classes, len(t_pred["P"][i]), spec.data.grid)
        if truth is None:
            continue
        truth = torch.from_numpy(truth)[None]
        y = _labels(meta, classes)[None]
        valid = torch.ones(truth.shape[:2], dtype=torch.bool)
        for name in counts:
            P = torch.from_numpy(reps[name]["predictions"]["P"][i])[None]
            masks = teacher_masks(P, y, valid, cfg)
            counts[name] = _add(counts[name], selection_counts(masks.pos, masks.pairs, truth, y, valid))
    if counts["teacher"] is None:
        return None
    scores = {name: selection_scores(c) for name, c in counts.items()}
    out = {"teacher": scores["teacher"], "student": scores["student"], "per_class": _per_class(counts["teacher"], classes)}
    out["gain_f1"] = {m: scores["teacher"][f"{m}_f1"] - scores["student"][f"{m}_f1"] for m in MODALITIES}
    return out


def _per_class(c: dict, classes: list[str]) -> dict:
    """{class: {audio_precision, audio_recall, visual_..., pair_precision}} (None where undefined)."""
    def ratio(a, b):
        return float(a) / float(b) if float(b) > 0 else None

    out = {}
    for k, name in enumerate(classes):
        row = {}
        for m, mod in enumerate(MODALITIES):
            row[f"{mod}_precision"] = ratio(c["correct"][m, k], c["selected"][m, k])
            row[f"{mod}_recall"] = ratio(c["correct"][m, k], c["true"][m, k])
        row["pair_precision"] = ratio(c["pairs_correct"][k], c["pairs"][k])
        out[name] = row
    return out


def flat_scores(quality: dict) -> dict[str, float]:
    """One level of scalars for metrics.jsonl and TensorBoard: `teacher_audio_precision`, ...,
    `gain_f1_audio`."""
    out = {f"{model}_{k}": v for model in ("teacher", "student") for k, v in quality[model].items()}
    out.update({f"gain_f1_{m}": v for m, v in quality["gain_f1"].items()})
    return out


def stream_scores(batch, losses, classes: list[str], grid, cfg: MethodConfig) -> dict[str, float]:
    """On a training micro-batch whose videos carry dense truth (UnAV-100-format data; LLP's
    training videos have none): the masks the step used and the student's own by the same
    rule against it, as `stream_teacher_audio_precision`, ... (empty where there is none)."""
    rows = [i for i, m in enumerate(batch.meta) if m.get("events") is not None]
    if losses.masks is None or not rows:
        return {}
    T = batch.mask.shape[1]
    truth = torch.stack([torch.from_numpy(segment_truth(batch.meta[i], classes, T, grid)) for i in rows])
    pick = torch.tensor(rows)

    def take(x: torch.Tensor) -> torch.Tensor:
        return x[pick.to(x.device)].cpu()

    y, valid = take(batch.labels), take(batch.mask)
    own = teacher_masks(take(losses.P_student).float(), y, valid, cfg)
    out = {}
    for name, (pos, pairs) in (("teacher", (take(losses.masks.pos), take(losses.masks.pairs))),
                               ("student", (own.pos, own.pairs))):
        scores = selection_scores(selection_counts(pos, pairs, truth, y, valid))
        out.update({f"stream_{name}_{k}": v for k, v in scores.items()})
    return out

