"""The self-distillation loss on tensors: identities, a hand-computed example, gradients, errors."""

import math

import pytest
import torch

from hf_mtkd.self_distillation.losses import (
    SIMILARITIES,
    centred,
    kl_divergence,
    parse_similarity,
    self_distillation_loss,
    similarity_loss,
)


def _loss(deep_logits, exit_logits, labels, deep_repr, exit_reprs, **kwargs):
    options = dict(gamma=1.0, alpha=1.0, beta=1.0, similarity="l2", temperature=1.0)
    options.update(kwargs)
    return self_distillation_loss(deep_logits, exit_logits, labels, deep_repr, exit_reprs, **options)


@pytest.mark.parametrize("similarity", SIMILARITIES)
def test_identical_exits_give_zero_kl_and_similarity(similarity):
    torch.manual_seed(0)
    logits, repr_ = torch.randn(4, 5), torch.randn(4, 8)
    labels = torch.tensor([0, 1, 2, 3])
    loss, parts = _loss(
        logits, [logits.clone(), logits.clone()], labels, repr_, [repr_.clone()] * 2, similarity=similarity
    )
    assert parts["kl"].item() == pytest.approx(0.0, abs=1e-6)
    assert parts["similarity"].item() == pytest.approx(0.0, abs=1e-6)
    ce = torch.nn.functional.cross_entropy(logits, labels)
    # CE(O) + gamma * mean CE(O_a) with O_a == O.
    assert loss.item() == pytest.approx(2 * ce.item(), rel=1e-6)


def test_hand_computed_example():
    # Deep: P = (1/2, 1/2); exit: Q = (3/4, 1/4); label 0.
    deep = torch.tensor([[0.0, 0.0]])
    exit_ = torch.tensor([[math.log(3.0), 0.0]])
    labels = torch.tensor([0])
    deep_repr = torch.tensor([[1.0, 0.0]])
    exit_repr = torch.tensor([[0.0, 2.0]])
    gamma, alpha, beta = 0.5, 2.0, 3.0
    loss, parts = _loss(
        deep, [exit_], labels, deep_repr, [exit_repr], gamma=gamma, alpha=alpha, beta=beta, similarity="l1+l2+cosine",
        centre_similarity=False,  # the paper's raw form (one clip centred has no spread: see the tests below)
    )
    ce = math.log(2.0)  # -log(1/2)
    ce_exit = -math.log(0.75)
    kl = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)  # KL(P || Q) = 0.5 ln(4/3)
    l1 = (1.0 + 2.0) / 2  # mean |a - b|
    l2 = (1.0 + 4.0) / 2  # mean (a - b)^2
    cosine = 1.0 - 0.0  # orthogonal vectors
    assert parts["ce"].item() == pytest.approx(ce, rel=1e-6)
    assert parts["ce_exits"].item() == pytest.approx(ce_exit, rel=1e-6)
    assert parts["kl"].item() == pytest.approx(kl, rel=1e-5)
    assert parts["similarity"].item() == pytest.approx(l1 + l2 + cosine, rel=1e-6)
    expected = ce + gamma * ce_exit + alpha * kl + beta * (l1 + l2 + cosine)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_terms_are_averaged_over_exits():
    torch.manual_seed(1)
    deep, reps = torch.randn(3, 4), torch.randn(3, 6)
    exits = [torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 4)]
    exit_reps = [torch.randn(3, 6) for _ in exits]
    labels = torch.tensor([0, 1, 3])
    loss, parts = _loss(deep, exits, labels, reps, exit_reps, gamma=1.0, alpha=1.0, beta=1.0)
    kls = [kl_divergence(deep, e).item() for e in exits]
    sims = [similarity_loss(r, reps, "l2").item() for r in exit_reps]
    assert parts["kl"].item() == pytest.approx(sum(kls) / 3, rel=1e-6)
    assert parts["similarity"].item() == pytest.approx(sum(sims) / 3, rel=1e-6)
    assert parts["ce_per_exit"].shape == (3,)


def test_kl_uses_log_probabilities_and_temperature():
    teacher, student = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([[0.0, 1.0, 0.0]])
    for temperature in (1.0, 4.0):
        p = torch.softmax(teacher / temperature, -1)
        q = torch.softmax(student / temperature, -1)
        expected = (p * (p.log() - q.log())).sum().item() * temperature**2
        assert kl_divergence(teacher, student, temperature).item() == pytest.approx(expected, rel=1e-5)


def test_deep_target_is_detached_by_default():
    torch.manual_seed(2)
    deep = torch.randn(4, 3, requires_grad=True)
    deep_repr = torch.randn(4, 5, requires_grad=True)
    exit_logits = torch.randn(4, 3, requires_grad=True)
    exit_repr = torch.randn(4, 5, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 0])

    _, parts = _loss(deep, [exit_logits], labels, deep_repr, [exit_repr])
    (parts["kl"] + parts["similarity"]).backward()
    assert deep.grad is None and deep_repr.grad is None
    assert exit_logits.grad is not None and exit_repr.grad is not None

    # The full loss reaches the deep logits through their own CE only.
    loss, _ = _loss(deep, [exit_logits], labels, deep_repr, [exit_repr])
    deep.grad = None
    loss.backward()
    ce_grad = torch.autograd.grad(torch.nn.functional.cross_entropy(deep, labels), deep)[0]
    assert torch.allclose(deep.grad, ce_grad)

    deep.grad = deep_repr.grad = None
    _, parts = _loss(deep, [exit_logits], labels, deep_repr, [exit_repr], detach_deep_target=False)
    (parts["kl"] + parts["similarity"]).backward()
    assert deep.grad is not None and deep_repr.grad is not None


def test_no_exits_is_plain_cross_entropy():
    logits, labels = torch.randn(2, 3), torch.tensor([1, 2])
    loss, parts = _loss(logits, [], labels, None, None)
    assert loss.item() == pytest.approx(torch.nn.functional.cross_entropy(logits, labels).item())
    assert parts["kl"].item() == 0.0


def test_beta_zero_needs_no_representations():
    logits = torch.randn(2, 3)
    loss, parts = _loss(logits, [logits + 1], torch.tensor([0, 1]), None, None, beta=0.0)
    assert torch.isfinite(loss) and parts["similarity"].item() == 0.0
    with pytest.raises(ValueError, match="needs deep_repr"):
        _loss(logits, [logits], torch.tensor([0, 1]), None, None, beta=1.0)


def test_bad_arguments_are_clear_errors():
    assert parse_similarity("cosine+L2") == ("cosine", "l2")
    with pytest.raises(ValueError, match="Unknown similarity"):
        parse_similarity("l3")
    with pytest.raises(ValueError, match="repeats"):
        parse_similarity("l1+l1")
    logits = torch.randn(2, 3)
    with pytest.raises(ValueError, match="temperature"):
        _loss(logits, [logits], torch.tensor([0, 1]), None, None, beta=0.0, temperature=0.0)
    with pytest.raises(ValueError, match="alpha"):
        _loss(logits, [logits], torch.tensor([0, 1]), None, None, beta=0.0, alpha=-1.0)


def test_label_smoothing_applies_to_every_heads_ce_as_the_trainers_label_smoother():
    from transformers.trainer_pt_utils import LabelSmoother

    torch.manual_seed(0)
    deep, exits, labels = torch.randn(4, 3), [torch.randn(4, 3), torch.randn(4, 3)], torch.tensor([0, 1, 2, 0])
    smoother = LabelSmoother(epsilon=0.2)
    loss, parts = _loss(deep, exits, labels, None, None, alpha=0.0, beta=0.0, gamma=0.5, label_smoothing=0.2)
    expected_exits = [smoother({"logits": e}, labels).item() for e in exits]
    assert parts["ce"].item() == pytest.approx(smoother({"logits": deep}, labels).item(), rel=1e-6)
    assert parts["ce_per_exit"].tolist() == pytest.approx(expected_exits, rel=1e-6)
    assert loss.item() == pytest.approx(parts["ce"].item() + 0.5 * sum(expected_exits) / 2, rel=1e-6)
    # The KL between heads is not smoothed.
    _, smoothed = _loss(deep, exits, labels, None, None, beta=0.0, label_smoothing=0.2)
    _, plain = _loss(deep, exits, labels, None, None, beta=0.0)
    assert smoothed["kl"].item() == plain["kl"].item()
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        _loss(deep, exits, labels, None, None, beta=0.0, label_smoothing=1.0)


# --------------------------------------------------------------------------- centred similarity (the collapse fix)


def test_centred_similarity_hand_computed():
    student = torch.tensor([[1.0, 0.0], [3.0, 2.0]])  # batch mean (2, 1): centred (-1, -1), (1, 1)
    target = torch.tensor([[0.0, 0.0], [0.0, 4.0]])  # batch mean (0, 2): centred (0, -2), (0, 2)
    # Centred differences (-1, 1), (1, -1): every |d| = 1 and d^2 = 1.
    assert similarity_loss(student, target, "l1").item() == pytest.approx(1.0)
    assert similarity_loss(student, target, "l2").item() == pytest.approx(1.0)
    # Both rows: cos((-1, -1), (0, -2)) = 2 / (sqrt(2) * 2).
    assert similarity_loss(student, target, "cosine").item() == pytest.approx(1.0 - 1.0 / math.sqrt(2.0), rel=1e-6)
    # Raw differences (1, 0), (3, -2): the paper's form.
    assert similarity_loss(student, target, "l2", centre=False).item() == pytest.approx((1 + 0 + 9 + 4) / 4)
    assert similarity_loss(student, target, "l1", centre=False).item() == pytest.approx((1 + 0 + 3 + 2) / 4)
    assert torch.equal(centred(student), torch.tensor([[-1.0, -1.0], [1.0, 1.0]]))


@pytest.mark.parametrize("similarity", SIMILARITIES)
def test_an_offset_every_clip_shares_adds_nothing_when_centred(similarity):
    torch.manual_seed(3)
    student, target = torch.randn(6, 8), torch.randn(6, 8)
    # Offsets shared by every clip of the batch, different for the two layers (as the pooled outputs of two
    # post-LayerNorm layers): large against the spread.
    shifted_student, shifted_target = student + 5 * torch.randn(1, 8), target + 5 * torch.randn(1, 8)
    plain = similarity_loss(student, target, similarity).item()
    assert similarity_loss(shifted_student, shifted_target, similarity).item() == pytest.approx(plain, rel=1e-5)
    raw = similarity_loss(shifted_student, shifted_target, similarity, centre=False).item()
    assert abs(raw - similarity_loss(student, target, similarity, centre=False).item()) > 0.1


@pytest.mark.parametrize("similarity", SIMILARITIES)
def test_centred_gradient_sums_to_zero_over_the_batch(similarity):
    torch.manual_seed(4)
    offset = 3 * torch.randn(1, 8)
    student = (torch.randn(5, 8) + offset).requires_grad_(True)
    target = torch.randn(5, 8) - offset
    (grad,) = torch.autograd.grad(similarity_loss(student, target, similarity), student)
    assert grad.abs().sum() > 1e-3  # it does push the clips...
    assert torch.allclose(grad.sum(dim=0), torch.zeros(8), atol=1e-6)  # ...but not all of them the same way
    # The raw form's gradient has a shared part: the push that collapsed the model.
    (raw_grad,) = torch.autograd.grad(similarity_loss(student, target, similarity, centre=False), student)
    assert raw_grad.sum(dim=0).abs().max() > 1e-3


def test_raw_l2_gradient_is_mostly_the_offset_mismatch_and_centring_removes_it():
    """The mechanism of the collapse on tensors: two layers whose outputs are a shared offset plus a small
    spread (as the pooled outputs of a post-LayerNorm wav2vec2). The raw L2 gradient is almost all the same
    for every clip (it moves every clip's representation the same way, towards the other layer's offset);
    the centred gradient has no such part and is the spread's alone."""
    torch.manual_seed(5)
    spread_student, spread_target = 0.05 * torch.randn(16, 32), 0.05 * torch.randn(16, 32)
    student = (spread_student + torch.randn(1, 32)).requires_grad_(True)
    target = spread_target + torch.randn(1, 32)
    (raw_grad,) = torch.autograd.grad(similarity_loss(student, target, "l2", centre=False), student)
    shared = raw_grad.mean(dim=0, keepdim=True).expand_as(raw_grad)
    assert shared.norm() ** 2 / raw_grad.norm() ** 2 > 0.95  # > 95% of the gradient's energy is the shared push
    (centred_grad,) = torch.autograd.grad(similarity_loss(student, target, "l2"), student)
    # Exactly the raw gradient minus its shared part (for L2), i.e. the gradient of the spreads' mismatch.
    assert torch.allclose(centred_grad, raw_grad - shared, atol=1e-7)
    expected = 2 * (centred(spread_student) - centred(spread_target)) / spread_student.numel()
    assert torch.allclose(centred_grad, expected, atol=1e-7)


def test_centre_similarity_reaches_the_loss_and_one_clip_adds_nothing():
    torch.manual_seed(6)
    deep, exit_ = torch.randn(4, 3), torch.randn(4, 3)
    labels = torch.tensor([0, 1, 2, 0])
    deep_repr, exit_repr = torch.randn(4, 8), torch.randn(4, 8) + 10.0
    _, centred_parts = _loss(deep, [exit_], labels, deep_repr, [exit_repr])  # the default
    _, raw_parts = _loss(deep, [exit_], labels, deep_repr, [exit_repr], centre_similarity=False)
    assert centred_parts["similarity"].item() == pytest.approx(similarity_loss(exit_repr, deep_repr, "l2").item())
    assert raw_parts["similarity"].item() == pytest.approx(
        similarity_loss(exit_repr, deep_repr, "l2", centre=False).item())
    assert raw_parts["similarity"].item() > 50 * centred_parts["similarity"].item()
    one = exit_repr[:1].clone().requires_grad_(True)
    loss = similarity_loss(one, deep_repr[:1], "l1+l2")
    (grad,) = torch.autograd.grad(loss, one)
    assert loss.item() == 0.0 and torch.equal(grad, torch.zeros_like(grad))
