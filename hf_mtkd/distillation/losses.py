"""Loss pieces every distillation method shares, as pure functions of tensors.

`softened_kl_terms` is the one temperature-softened KL in hf_mtkd: `kl_per_sample` sums its terms per
sample (multi-teacher KD, meta_curriculum and audio_text use it), self-distillation sums them over the batch
(`self_distillation.losses.kl_divergence`, which equals `F.kl_div(..., reduction="batchmean", log_target=True)`).
The callers reduce the terms themselves and scale by T^2 where their loss says, so each keeps its own order of
operations.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

KL_DIRECTIONS = ("forward", "reverse")

__all__ = ["KL_DIRECTIONS", "kl_per_sample", "softened_kl_terms"]


def softened_kl_terms(
    student_logits: torch.Tensor,
    target_logits: torch.Tensor,
    temperature: float,
    direction: str = "forward",
) -> torch.Tensor:
    """Per-class terms of the KL between P = softmax(target / T) and Q = softmax(student / T); summed over
    the last (class) dimension they give the KL of each sample. Shapes broadcast, e.g. (1, B, K) students
    against (N, B, K) teachers.

    forward = KL(P || Q) = sum P (log P - log Q), the usual distillation target (`KLDivLoss(log Q, P)`);
    reverse = KL(Q || P). Computed in float32 on log-probabilities: bf16/fp16 logits of large magnitude
    would lose the tails, and probabilities fed where log-probabilities belong are not a KL.
    """
    if direction not in KL_DIRECTIONS:
        raise ValueError(f"direction must be one of {KL_DIRECTIONS}, got {direction!r}.")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}.")
    log_q = F.log_softmax(student_logits.float() / temperature, dim=-1)
    log_p = F.log_softmax(target_logits.float() / temperature, dim=-1)
    if direction == "forward":
        return log_p.exp() * (log_p - log_q)
    return log_q.exp() * (log_q - log_p)


def kl_per_sample(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    temperature: float,
    direction: str = "forward",
) -> torch.Tensor:
    """KL between softened distributions, summed over classes: shape (..., B).

    forward = KL(P_T || P_S), what the authors' code computes (`KLDivLoss(log P_S, P_T)`);
    reverse = KL(P_S || P_T), the paper's equation as written.
    """
    return softened_kl_terms(student_logits, teacher_logits, temperature, direction).sum(-1)
