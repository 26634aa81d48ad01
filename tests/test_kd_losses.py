"""The one temperature-softened KL (`hf_mtkd.distillation.losses.softened_kl_terms`) and the two methods pinned to
it."""

import pytest
import torch
import torch.nn.functional as F

from hf_mtkd.distillation.losses import kl_per_sample, softened_kl_terms
from hf_mtkd.mtkd.losses import multi_teacher_kd_loss
from hf_mtkd.self_distillation.losses import kl_divergence, self_distillation_loss


def logits(*shape, seed=0, scale=3.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


def test_hand_computed_example():
    student, target = torch.tensor([[0.0, 0.0]]), torch.tensor([[2.0 * torch.log(torch.tensor(3.0)), 0.0]])
    # T = 2: P = softmax(target / 2) = (3/4, 1/4), Q = (1/2, 1/2); KL(P || Q) = 3/4 ln(3/2) + 1/4 ln(1/2).
    expected = 0.75 * torch.log(torch.tensor(1.5)) + 0.25 * torch.log(torch.tensor(0.5))
    terms = softened_kl_terms(student, target, temperature=2.0)
    assert terms.shape == (1, 2)
    assert terms.sum(-1).item() == pytest.approx(expected.item(), abs=1e-6)
    reverse = 0.5 * torch.log(torch.tensor(0.5 / 0.75)) + 0.5 * torch.log(torch.tensor(0.5 / 0.25))
    assert softened_kl_terms(student, target, 2.0, "reverse").sum().item() == pytest.approx(reverse.item(), abs=1e-6)


def test_identities_and_limits():
    x = logits(5, 4)
    assert torch.allclose(softened_kl_terms(x, x, 3.0).sum(-1), torch.zeros(5), atol=1e-7)  # KL(P || P) = 0
    assert torch.allclose(softened_kl_terms(x + 7.0, x, 3.0).sum(-1), torch.zeros(5), atol=1e-6)  # shift-invariant
    assert (softened_kl_terms(logits(5, 4, seed=1), x, 0.5).sum(-1) >= -1e-7).all()
    # A very high temperature flattens both distributions: the KL goes to 0.
    assert softened_kl_terms(logits(5, 4, seed=1), x, 1e4).sum(-1).abs().max() < 1e-6
    with pytest.raises(ValueError, match="direction"):
        softened_kl_terms(x, x, 1.0, "sideways")
    with pytest.raises(ValueError, match="temperature"):
        softened_kl_terms(x, x, 0.0)


def test_equals_torch_kl_div():
    student, target = logits(6, 5, seed=2), logits(6, 5, seed=3)
    reference = F.kl_div(
        F.log_softmax(student / 2.5, -1), F.log_softmax(target / 2.5, -1), reduction="none", log_target=True
    )
    assert torch.allclose(softened_kl_terms(student, target, 2.5), reference, atol=1e-7)


@pytest.mark.parametrize("direction", ["forward", "reverse"])
def test_multi_teacher_kd_is_pinned_to_the_shared_kl(direction):
    student, teachers = logits(4, 3, seed=4).requires_grad_(), logits(2, 4, 3, seed=5)
    shared = softened_kl_terms(student.unsqueeze(0), teachers, 5.0, direction).sum(-1)  # (N, B)
    assert torch.equal(kl_per_sample(student.unsqueeze(0), teachers, 5.0, direction), shared)
    weights = torch.tensor([[0.25, 0.75]]).expand(4, 2)
    loss, parts = multi_teacher_kd_loss(student, teachers, torch.tensor([0, 1, 2, 0]), weights, kd_lambda=1.0,
                                        temperature=5.0, direction=direction)
    assert torch.equal(parts["kl"], (weights.transpose(0, 1) * shared).sum(0).mean().detach() * 25.0)


def test_self_distillation_is_pinned_to_the_shared_kl():
    deep, exit_logits = logits(4, 3, seed=6), logits(4, 3, seed=7)
    shared = softened_kl_terms(exit_logits, deep, 2.0).sum() / 4 * 2.0**2
    assert torch.equal(kl_divergence(deep, exit_logits, 2.0), shared)
    _, parts = self_distillation_loss(deep, [exit_logits], torch.tensor([0, 1, 2, 0]), None, None, beta=0.0,
                                      temperature=2.0)
    assert torch.equal(parts["kl_per_exit"][0], shared)
