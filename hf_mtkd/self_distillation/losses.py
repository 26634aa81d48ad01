"""The self-distillation loss of SPEC section 2, on tensors only.

    L = CE(O, y) + gamma/|A| sum_a CE(O_a, y) + alpha/|A| sum_a KL(P || P_a) + beta/|A| sum_a sim(H, H_a)

with P = softmax(O / T), P_a = softmax(O_a / T), O the deepest head's logits, O_a the exit's, and (H, H_a)
either the pooled block outputs (H_N, H_Ma; level "embedding") or the first linear layers' outputs
(H_L, H_La; level "linear") -- which pair is passed in is the caller's choice.

The similarity compares the representations *centred on their batch mean* (`centre_similarity`, on by default;
`False` is the paper's raw form). Why: the pooled outputs of a post-LayerNorm wav2vec2 are dominated by an offset
that every clip shares (the mean of layer-normed frames: on EmoDB + RAVDESS the across-clip spread of H was 0.32
against an offset of RMS 0.36 at initialisation, and 0.02 against 1.0 after 20 steps), and the offsets of two layers
differ. The raw L2 between H_N and H_a is then almost all offset mismatch (98% of its value, and from 90% at
initialisation to 99-100% afterwards of its gradient on the encoder), a push that is the same for every clip, so it
never averages out over the batch, and that was 5-10 times the cross-entropy's gradient. It drove every layer to the
same input-independent output: the tiny demo model on real speech sat at chance (CE = ln 4, validation UR 25.0%) for
all 10 epochs, while beta = 0 reached 50% UR. The offset says nothing about any clip; centred, the term compares only
how the clips differ from each other, its gradient sums to zero over the batch and vanishes with the spread instead
of holding a collapsed model there (same run: 38.6% UR after 3 epochs, as beta = 0). The batch means stay in the
graph, which is what makes the gradient with respect to the representations sum to zero over the batch for every
term (for L2 it is the same gradient as with the means held constant). The means are those of the batch the loss
sees: each process's micro-batch under data parallelism or gradient accumulation (they are not pooled across
processes), so the term depends on how a batch is split; a batch of one clip has no spread, and its L1/L2 terms
are 0 (cosine: 1, a constant), so it adds no gradient.

The KL term is the paper's formula computed on log-probabilities (the authors' code fed probabilities to
`KLDivLoss`, which expects log-probabilities, so its term was not a KL). It is averaged over the batch and
multiplied by T^2 (Hinton et al.), a no-op at the paper's T = 1. By default the deep targets (O and H) are
detached, so the distillation terms train the exits, not the deepest head.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F

from ..distillation.losses import softened_kl_terms

SIMILARITY_TERMS = ("l1", "l2", "cosine")
#: The similarity names accepted (the paper's single losses and the sums it compares).
SIMILARITIES = ("l1", "l2", "cosine", "l1+l2", "l1+cosine", "l2+cosine", "l1+l2+cosine")
SIMILARITY_LEVELS = ("embedding", "linear")


def parse_similarity(similarity: str) -> tuple[str, ...]:
    """'l2+cosine' -> ('l2', 'cosine'); unknown or repeated terms are errors."""
    if not isinstance(similarity, str) or not similarity.strip():
        raise ValueError(f"similarity must be a name such as 'l2' or 'l1+cosine', got {similarity!r}.")
    terms = tuple(term.strip().lower() for term in similarity.split("+"))
    unknown = [term for term in terms if term not in SIMILARITY_TERMS]
    if unknown:
        raise ValueError(
            f"Unknown similarity term(s) {unknown} in {similarity!r}; use {', '.join(SIMILARITY_TERMS)} or sums "
            f"of them joined by '+' (e.g. {', '.join(SIMILARITIES[3:])})."
        )
    if len(set(terms)) != len(terms):
        raise ValueError(f"similarity {similarity!r} repeats a term.")
    return terms


def centred(representations: torch.Tensor) -> torch.Tensor:
    """(batch, dim) representations minus their mean over the batch (the mean stays in the graph: the gradient of
    anything computed on the result sums to zero over the batch)."""
    return representations - representations.mean(dim=0, keepdim=True)


def similarity_loss(
    student: torch.Tensor, target: torch.Tensor, similarity: str | Sequence[str], *, centre: bool = True
) -> torch.Tensor:
    """Sum of the chosen terms between (batch, dim) representations, each averaged over the batch:
    l1 = mean absolute error, l2 = mean squared error (the authors' MSELoss), cosine = 1 - cosine similarity.
    With `centre` (the default) both are first `centred` on their own batch mean (see the module docstring)."""
    terms = parse_similarity(similarity) if isinstance(similarity, str) else tuple(similarity)
    if student.shape != target.shape:
        raise ValueError(f"Representations differ in shape: {tuple(student.shape)} vs {tuple(target.shape)}.")
    student, target = student.float(), target.float()  # fp16 squares overflow; fp16 cosine of zeros is NaN
    if centre:
        student, target = centred(student), centred(target)
    total = student.new_zeros(())
    for term in terms:
        if term == "l1":
            total = total + F.l1_loss(student, target)
        elif term == "l2":
            total = total + F.mse_loss(student, target)
        else:
            total = total + (1.0 - F.cosine_similarity(student, target, dim=-1)).mean()
    return total


def kl_divergence(target_logits: torch.Tensor, student_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """KL(P_target || P_student) with P = softmax(logits / T), batch mean, times T^2; on log-probabilities.

    The same sum and division as `F.kl_div(log P_student, log P_target, reduction="batchmean", log_target=True)`.
    """
    terms = softened_kl_terms(student_logits, target_logits, temperature)
    return terms.sum() / student_logits.shape[0] * temperature**2


def self_distillation_loss(
    deep_logits: torch.Tensor,
    exit_logits: Sequence[torch.Tensor],
    labels: torch.Tensor,
    deep_repr: torch.Tensor | None,
    exit_reprs: Sequence[torch.Tensor] | None,
    *,
    gamma: float = 1.0,
    alpha: float = 1.0,
    beta: float = 1.0,
    similarity: str = "l2",
    temperature: float = 1.0,
    detach_deep_target: bool = True,
    label_smoothing: float = 0.0,
    centre_similarity: bool = True,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The total loss and its parts.

    Args:
        deep_logits: (batch, K) logits O of the deepest head.
        exit_logits: one (batch, K) tensor O_a per exit.
        labels: (batch,) class ids.
        deep_repr / exit_reprs: (batch, D) H and one H_a per exit (may be None when beta == 0).
        gamma, alpha, beta: weights of the exits' CE, the KL and the similarity terms (each averaged over exits).
        similarity: one of `SIMILARITIES`.
        temperature: softmax temperature T of the KL term.
        detach_deep_target: stop gradients of the KL and similarity terms into the deep logits / representation.
        label_smoothing: smoothing of the CE targets of every head (the Trainer's `label_smoothing_factor`, as its
            `LabelSmoother` applies it); the KL term is not smoothed.
        centre_similarity: compare the representations centred on their batch means (see the module docstring).

    Returns:
        `(loss, parts)`; parts holds "ce" (deepest head), "ce_exits", "kl", "similarity" (each the mean over
        exits, unweighted) and per-exit tensors "ce_per_exit", "kl_per_exit", "similarity_per_exit".
    """
    for name, value in (("gamma", gamma), ("alpha", alpha), ("beta", beta)):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}.")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}.")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}.")
    terms = parse_similarity(similarity)
    # Float32 throughout: fp16 logits or embeddings of magnitude 1e4 overflow in the CE/KL sums and the
    # squared errors, and the cosine of a zero fp16 vector is 0/0.
    deep_logits = deep_logits.float()
    exit_logits = [logits.float() for logits in exit_logits]
    deep_repr = deep_repr.float() if deep_repr is not None else None
    exit_reprs = [repr_.float() for repr_ in exit_reprs] if exit_reprs is not None else None
    labels = labels.view(-1).to(deep_logits.device)
    ce = F.cross_entropy(deep_logits, labels, label_smoothing=label_smoothing)
    zero = deep_logits.new_zeros(())
    if not exit_logits:
        empty = deep_logits.new_zeros(0)
        parts = {"ce": ce, "ce_exits": zero, "kl": zero, "similarity": zero}
        parts.update(ce_per_exit=empty, kl_per_exit=empty, similarity_per_exit=empty)
        return ce, parts

    target_logits = deep_logits.detach() if detach_deep_target else deep_logits
    ce_per_exit = torch.stack(
        [F.cross_entropy(logits, labels, label_smoothing=label_smoothing) for logits in exit_logits]
    )
    kl_per_exit = torch.stack([kl_divergence(target_logits, logits, temperature) for logits in exit_logits])
    if deep_repr is None or exit_reprs is None:
        if beta != 0:
            raise ValueError("The similarity term (beta != 0) needs deep_repr and exit_reprs.")
        similarity_per_exit = torch.zeros_like(ce_per_exit)
    else:
        exit_reprs = list(exit_reprs)
        if len(exit_reprs) != len(exit_logits):
            raise ValueError(f"Got {len(exit_logits)} exit logits but {len(exit_reprs)} exit representations.")
        target_repr = deep_repr.detach() if detach_deep_target else deep_repr
        similarity_per_exit = torch.stack(
            [similarity_loss(repr_, target_repr, terms, centre=centre_similarity) for repr_ in exit_reprs]
        )

    parts = {
        "ce": ce,
        "ce_exits": ce_per_exit.mean(),
        "kl": kl_per_exit.mean(),
        "similarity": similarity_per_exit.mean(),
        "ce_per_exit": ce_per_exit,
        "kl_per_exit": kl_per_exit,
        "similarity_per_exit": similarity_per_exit,
    }
    loss = ce + gamma * parts["ce_exits"] + alpha * parts["kl"] + beta * parts["similarity"]
    return loss, parts


__all__ = [
    "SIMILARITIES",
    "centred",
    "SIMILARITY_LEVELS",
    "kl_divergence",
    "parse_similarity",
    "self_distillation_loss",
    "similarity_loss",
]
