"""Multi-teacher KD loss and teacher weights as pure functions of tensors (SPEC section 1).

Shapes: student logits (B, K); teacher logits (N, B, K) for N teachers, already in the
student's label order; teacher weights (B, N), each row summing to 1.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from ..distillation.losses import kl_per_sample

KL_REDUCTIONS = ("batchmean", "mean")


def cosine_teacher_weights(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    weighting_temperature: float = 0.25,
    per_sample: bool = False,
) -> torch.Tensor:
    """w = softmax(cs / tau_w) over teachers, cs_i = cosine(l_S, l_Ti) on raw logits, detached.

    per_sample=False follows the authors' code: cosine per sample, averaged over the batch,
    so every sample of the batch gets the same weights. Returns (B, N).
    """
    student = student_logits.detach().float().unsqueeze(0)  # (1, B, K)
    cos = F.cosine_similarity(student, teacher_logits.detach().float(), dim=-1)  # (N, B)
    if not per_sample:
        cos = cos.mean(dim=1, keepdim=True).expand_as(cos)
    return torch.softmax(cos.transpose(0, 1) / weighting_temperature, dim=-1)


def language_teacher_weights(
    language_ids: torch.Tensor,
    teacher_language_ids: torch.Tensor,
    fallback: torch.Tensor,
) -> torch.Tensor:
    """Each sample goes to the teacher(s) of its language (shared equally if several);
    samples whose language has no teacher keep their row of `fallback` (B, N)."""
    match = (language_ids.unsqueeze(1) == teacher_language_ids.unsqueeze(0)).float()  # (B, N)
    has_teacher = match.sum(dim=1, keepdim=True) > 0
    routed = match / match.sum(dim=1, keepdim=True).clamp_min(1.0)
    return torch.where(has_teacher, routed, fallback.float())


def multi_teacher_kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: Optional[torch.Tensor],
    teacher_weights: torch.Tensor,
    *,
    kd_lambda: float,
    temperature: float,
    direction: str = "forward",
    reduction: str = "batchmean",
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L = (1 - lambda) * CE + lambda * T^2 * sum_i w_i KL_i.

    reduction "batchmean" averages the per-sample KL over the batch (the SPEC default);
    "mean" also divides by the number of classes, as the authors' `KLDivLoss(reduction="mean")` did.
    `label_smoothing` (the Trainer's `label_smoothing_factor`) smooths the CE's targets as the Trainer's
    `LabelSmoother` does; the KD term keeps the teachers' distributions.
    Returns the loss and its parts (ce, kl) for logging.
    """
    if reduction not in KL_REDUCTIONS:
        raise ValueError(f"reduction must be one of {KL_REDUCTIONS}, got {reduction!r}.")
    if teacher_logits.dim() != 3 or teacher_logits.shape[1:] != student_logits.shape:
        raise ValueError(
            f"teacher_logits must be (N, B, K) with (B, K) = {tuple(student_logits.shape)}, got "
            f"{tuple(teacher_logits.shape)}."
        )
    if teacher_weights.shape != (student_logits.shape[0], teacher_logits.shape[0]):
        raise ValueError(f"teacher_weights must be (B, N), got {tuple(teacher_weights.shape)}.")
    # Teachers are targets: no gradient flows into them, whatever the caller passes.
    kl = kl_per_sample(student_logits.unsqueeze(0), teacher_logits.detach(), temperature, direction)  # (N, B)
    weighted = (teacher_weights.detach().float().transpose(0, 1) * kl).sum(0)  # (B,)
    kl_term = weighted.mean() * temperature**2
    if reduction == "mean":
        kl_term = kl_term / student_logits.shape[-1]
    if labels is None or kd_lambda == 1.0:
        ce = student_logits.new_zeros((), dtype=torch.float32)
    else:
        ce = F.cross_entropy(student_logits.float(), labels, label_smoothing=label_smoothing)
    loss = (1.0 - kd_lambda) * ce + kd_lambda * kl_term
    return loss, {"ce": ce.detach(), "kl": kl_term.detach()}
