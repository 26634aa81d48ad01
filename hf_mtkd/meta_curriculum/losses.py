"""The losses of meta-teacher + curriculum distillation as pure functions of tensors (SPEC section 3).

Equation numbers are the paper's (Zhao et al.); where it leaves a point open, MPDistil's code
(Sengupta et al., ICLR 2024) settles it and the docstring says so.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..distillation.losses import kl_per_sample

SOFT_LOSSES = ("kl", "mse")


def supcon_loss(
    anchors: torch.Tensor,
    anchor_labels: torch.Tensor,
    contrast: torch.Tensor,
    contrast_labels: torch.Tensor,
    temperature: float,
    exclude: torch.Tensor | None = None,
) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al. 2020, L_out; the paper's eq. 3), averaged over anchors.

    For anchor k with embedding z_k: -1/|P(k)| sum_{p in P(k)} log( exp(z_k.z_p / tau) / sum_{a in A(k)} exp(z_k.z_a /
    tau) ),
    A(k) = the contrast set minus the pairs in `exclude`, P(k) = the members of A(k) with the anchor's label.
    Embeddings are L2-normalised here. With MoCo the anchors are the queries and the contrast set is the keys
    (this batch's, then the queue's): an anchor's own key is its positive, so nothing is excluded. With two
    views of one batch, exclude each anchor's own entry. Anchors without a positive are left out of the mean
    (0 when none has one). The paper sums over anchors; the mean keeps lambda independent of the batch size.

    anchors (M, D), anchor_labels (M,), contrast (C, D), contrast_labels (C,), exclude (M, C) bool or None.
    """
    if anchors.dim() != 2 or contrast.dim() != 2 or anchors.shape[1] != contrast.shape[1]:
        raise ValueError(f"anchors (M, D) and contrast (C, D) must share D, got {tuple(anchors.shape)} and "
                         f"{tuple(contrast.shape)}.")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}.")
    z_anchor = F.normalize(anchors.float(), dim=-1)
    z_contrast = F.normalize(contrast.float(), dim=-1)
    logits = z_anchor @ z_contrast.T / temperature  # (M, C)
    allowed = torch.ones_like(logits, dtype=torch.bool) if exclude is None else ~exclude
    positive = (anchor_labels[:, None] == contrast_labels[None, :]) & allowed
    logits = logits.masked_fill(~allowed, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    n_positive = positive.sum(dim=1)
    has_positive = n_positive > 0
    if not has_positive.any():
        return anchors.new_zeros((), dtype=torch.float32) + 0.0 * anchors.sum()
    mean_log_prob_pos = (
        torch.where(positive, log_prob, torch.zeros_like(log_prob)).sum(dim=1)[has_positive] / n_positive[has_positive]
    )
    return -mean_log_prob_pos.mean()


def student_loss(
    logits: torch.Tensor, labels: torch.Tensor, supcon: torch.Tensor, supcon_lambda: float
) -> torch.Tensor:
    """Eq. 2 / eq. 11: lambda * SupCon + (1 - lambda) * CE."""
    return supcon_lambda * supcon + (1.0 - supcon_lambda) * F.cross_entropy(logits.float(), labels)


def soft_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float, kind: str = "kl"
) -> torch.Tensor:
    """The soft term before its tau^2 factor: "kl" = KL(P_T' || P_S) at temperature tau, batch mean (the
    paper's eq. 5-7); "mse" = the mean squared difference of the two softened distributions (MPDistil's code).
    The teacher is a target: no gradient flows into it."""
    if kind not in SOFT_LOSSES:
        raise ValueError(f"soft loss must be one of {SOFT_LOSSES}, got {kind!r}.")
    teacher_logits = teacher_logits.detach()
    if kind == "kl":
        return kl_per_sample(student_logits, teacher_logits, temperature, "forward").mean()
    return F.mse_loss(torch.softmax(student_logits.float() / temperature, dim=-1),
                      torch.softmax(teacher_logits.float() / temperature, dim=-1))


def pkd_loss(student_features: torch.Tensor, teacher_features: torch.Tensor) -> torch.Tensor:
    """Eq. 8 as MPDistil computes it: MSE between the L2-normalised pooled features (student features already
    projected to the teacher's width). Normalised, each element is O(1/D), which is what makes beta = 100 sensible."""
    if student_features.shape != teacher_features.shape:
        raise ValueError(
            f"student features {tuple(student_features.shape)} and teacher features {tuple(teacher_features.shape)} "
            "differ: project the student's to the teacher's width first."
        )
    return F.mse_loss(
        F.normalize(student_features.float(), dim=-1), F.normalize(teacher_features.detach().float(), dim=-1)
    )


def kd_loss(
    student_objective: torch.Tensor,
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    student_features: torch.Tensor,
    teacher_features: torch.Tensor,
    *,
    alpha: float,
    beta: float,
    temperature: float,
    soft: str = "kl",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Eq. 4: alpha * L_student + (1 - alpha) * tau^2 * soft + beta * PKD. (MPDistil's code weights the soft
    term by alpha and CE by 1 - alpha, the reverse; the issue keeps the paper's order.) Returns the loss and its
    parts."""
    soft_term = soft_loss(student_logits, teacher_logits, temperature, soft) * temperature**2
    pkd_term = (
        pkd_loss(student_features, teacher_features) if beta else student_logits.new_zeros((), dtype=torch.float32)
    )
    loss = alpha * student_objective + (1.0 - alpha) * soft_term + beta * pkd_term
    return loss, {"student": student_objective.detach(), "soft": soft_term.detach(), "pkd": pkd_term.detach()}


def true_class_probability(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """softmax(logits)[y] per sample, (B,)."""
    return torch.softmax(logits.float(), dim=-1).gather(1, labels.view(-1, 1)).squeeze(1)


def meta_teacher_loss(
    teacher_view_logits: torch.Tensor, student_view_logits: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Eq. 9: -1/(2N) sum_i [log p(y_i | h(i, T)) + log p(y_i | h(i, S))], both through T''s head."""
    return 0.5 * (
        F.cross_entropy(teacher_view_logits.float(), labels) + F.cross_entropy(student_view_logits.float(), labels)
    )


def consistency_loss(
    student_logits: torch.Tensor, meta_teacher_logits: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Eq. 12 as MPDistil computes it: mean_i [p_T'(y_i | h(i, S')) - p_S'(y_i)], true-class probabilities of the
    frozen meta-teacher on the updated student's features and of the updated student itself."""
    return (
        true_class_probability(meta_teacher_logits, labels) - true_class_probability(student_logits, labels)
    ).mean()


def win_rate(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Eq. 13, the curriculum's reward: the fraction of samples where the student gives the true class a higher
    probability than the meta-teacher."""
    return (
        (true_class_probability(student_logits, labels) > true_class_probability(teacher_logits, labels))
        .float()
        .mean()
    )


def discounted_returns(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    """G_t = sum_{i >= t} gamma^i r_i: the return from step t, weighted by gamma^t as in episodic REINFORCE
    (Sutton & Barto; MPDistil's `discount_rewards`)."""
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}.")
    steps = torch.arange(len(rewards), dtype=torch.float64, device=rewards.device)
    weighted = rewards.double() * gamma**steps
    return weighted.flip(0).cumsum(0).flip(0).to(rewards.dtype if rewards.is_floating_point() else torch.float32)


def reinforce_loss(log_probs: torch.Tensor, rewards: torch.Tensor, gamma: float,
                   baseline: torch.Tensor | float | None = None, normalize: bool = False) -> torch.Tensor:
    """Policy-gradient loss of one episode: -mean_t[(G_t - b) * log pi(a_t | s_t)], b = `baseline` (a number from
    outside the episode) or, when None, the episode's mean return (then one step gives an advantage of exactly 0).
    normalize: advantages divided by the episode's standard deviation of returns (the step size then does not depend
    on the rewards' scale)."""
    if log_probs.shape != rewards.shape or log_probs.dim() != 1:
        raise ValueError(f"log_probs and rewards must be (T,) each, got {tuple(log_probs.shape)} and "
                         f"{tuple(rewards.shape)}.")
    returns = discounted_returns(rewards.detach().float(), gamma)
    reference = returns.mean() if baseline is None else torch.as_tensor(baseline, dtype=returns.dtype).detach()
    advantage = returns - reference
    if normalize and len(returns) > 1:
        advantage = advantage / (returns.std() + 1e-8)
    return -(advantage * log_probs).mean()


__all__ = [
    "SOFT_LOSSES",
    "consistency_loss",
    "discounted_returns",
    "kd_loss",
    "meta_teacher_loss",
    "pkd_loss",
    "reinforce_loss",
    "soft_loss",
    "student_loss",
    "supcon_loss",
    "true_class_probability",
    "win_rate",
]
