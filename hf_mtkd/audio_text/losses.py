"""Logit + feature distillation loss of the multimodal students, as a pure function of tensors (SPEC section 4).

    L = alpha * T^2 * KL(P_T || P_S) + (1 - alpha) * CE(y, S) + gamma * MSE(H_T, H_S)

P = softmax(logits / T); the KL is summed over classes and averaged over the batch (the authors'
`KLDivLoss(reduction="batchmean")` on log P_S, P_T, times T^2). H are the text encoders' last hidden
states (B, L, D); the MSE is the mean of squared differences over the elements of the positions the
text padding mask keeps (the authors' `MSELoss()` over the whole sequence at batch size 1, which is the
paper's eq. 5 there).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from ..distillation.losses import kl_per_sample


def masked_mse(
    student_hidden: torch.Tensor, teacher_hidden: torch.Tensor, mask: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """Mean squared difference over the elements of the unmasked positions of (B, L, D) tensors; mask (B, L)."""
    if student_hidden.shape != teacher_hidden.shape:
        raise ValueError(
            f"Student and teacher text hidden states differ in shape: {tuple(student_hidden.shape)} vs "
            f"{tuple(teacher_hidden.shape)} (students must keep the teacher's width and tokenizer)."
        )
    squared = (student_hidden.float() - teacher_hidden.float()).pow(2)
    if mask is None:
        return squared.mean()
    keep = mask.to(squared.dtype).unsqueeze(-1)
    count = keep.sum() * squared.shape[-1]
    return (squared * keep).sum() / count.clamp(min=1)


def audio_text_kd_loss(
    student_logits: torch.Tensor,
    labels: torch.Tensor,
    teacher_logits: Optional[torch.Tensor] = None,
    student_text_hidden: Optional[torch.Tensor] = None,
    teacher_text_hidden: Optional[torch.Tensor] = None,
    text_mask: Optional[torch.Tensor] = None,
    *,
    temperature: float = 2.0,
    alpha: float = 0.5,
    gamma: float = 1.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total loss and its parts {"ce", "kl", "mse"} (parts detached; the KL part excludes T^2 and alpha).

    Without a teacher (`teacher_logits` None) the loss is plain CE: alpha and gamma must then be 0, so that a
    KD setting never silently turns into fine-tuning.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}.")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}.")
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}.")
    ce = F.cross_entropy(student_logits.float(), labels)
    parts = {"ce": ce.detach()}
    loss = (1.0 - alpha) * ce
    if alpha > 0:
        if teacher_logits is None:
            raise ValueError("alpha > 0 needs teacher logits (the KL term); use alpha=0 to train without a teacher.")
        kl = kl_per_sample(student_logits, teacher_logits, temperature, "forward").mean()
        loss = loss + alpha * temperature**2 * kl
        parts["kl"] = kl.detach()
    if gamma > 0:
        if student_text_hidden is None or teacher_text_hidden is None:
            raise ValueError("gamma > 0 needs the student's and the teacher's text hidden states (the feature term).")
        mse = masked_mse(student_text_hidden, teacher_text_hidden, text_mask)
        loss = loss + gamma * mse
        parts["mse"] = mse.detach()
    return loss, parts


__all__ = ["audio_text_kd_loss", "masked_mse"]
