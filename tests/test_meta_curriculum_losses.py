"""Meta-curriculum losses on tensors: hand computations, identities, limits, and REINFORCE on a toy problem."""

import math

import pytest
import torch
import torch.nn.functional as F

from hf_mtkd.meta_curriculum.losses import (
    consistency_loss,
    discounted_returns,
    kd_loss,
    meta_teacher_loss,
    pkd_loss,
    reinforce_loss,
    soft_loss,
    student_loss,
    supcon_loss,
    win_rate,
)


def _unit(v):
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def _dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def _hand_supcon(anchors, anchor_labels, contrast, contrast_labels, tau, excluded=()):
    """Khosla et al. L_out written out with Python floats, averaged over anchors with positives."""
    anchors = [_unit(a) for a in anchors]
    contrast = [_unit(c) for c in contrast]
    per_anchor = []
    for k, (z_k, y_k) in enumerate(zip(anchors, anchor_labels)):
        allowed = [a for a in range(len(contrast)) if (k, a) not in excluded]
        positives = [p for p in allowed if contrast_labels[p] == y_k]
        if not positives:
            continue
        denominator = sum(math.exp(_dot(z_k, contrast[a]) / tau) for a in allowed)
        per_anchor.append(
            -sum(math.log(math.exp(_dot(z_k, contrast[p]) / tau) / denominator) for p in positives) / len(positives)
        )
    return sum(per_anchor) / len(per_anchor)


ANCHORS = [[1.0, 0.0], [0.6, 0.8], [-1.0, 0.5]]
ANCHOR_LABELS = [0, 1, 0]
CONTRAST = [[0.9, 0.1], [0.0, 1.0], [-0.5, -0.5], [1.0, 1.0]]
CONTRAST_LABELS = [0, 1, 1, 0]


def test_supcon_matches_hand_computation_with_moco_keys():
    expected = _hand_supcon(ANCHORS, ANCHOR_LABELS, CONTRAST, CONTRAST_LABELS, tau=0.5)
    got = supcon_loss(torch.tensor(ANCHORS), torch.tensor(ANCHOR_LABELS), torch.tensor(CONTRAST),
                      torch.tensor(CONTRAST_LABELS), temperature=0.5)
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_supcon_two_views_excludes_self_and_skips_anchors_without_positives():
    batch = torch.tensor(ANCHORS + [[0.2, -1.0]])
    labels = torch.tensor(ANCHOR_LABELS + [2])  # the last anchor has no other of its class
    exclude = torch.eye(4, dtype=torch.bool)
    expected = _hand_supcon(batch.tolist(), labels.tolist(), batch.tolist(), labels.tolist(), tau=0.1,
                            excluded={(i, i) for i in range(4)})
    got = supcon_loss(batch, labels, batch, labels, temperature=0.1, exclude=exclude)
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_supcon_ignores_embedding_scale_and_is_differentiable():
    anchors = torch.tensor(ANCHORS, requires_grad=True)
    loss = supcon_loss(
        anchors * 3.0, torch.tensor(ANCHOR_LABELS), torch.tensor(CONTRAST), torch.tensor(CONTRAST_LABELS), 0.5
    )
    ref = supcon_loss(
        torch.tensor(ANCHORS), torch.tensor(ANCHOR_LABELS), torch.tensor(CONTRAST), torch.tensor(CONTRAST_LABELS), 0.5
    )
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)
    loss.backward()
    assert torch.isfinite(anchors.grad).all() and anchors.grad.abs().sum() > 0


def test_student_loss_limits():
    logits, labels = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0])
    supcon = torch.tensor(3.0)
    assert student_loss(logits, labels, supcon, 0.0).item() == pytest.approx(F.cross_entropy(logits, labels).item())
    assert student_loss(logits, labels, supcon, 1.0).item() == pytest.approx(3.0)


def test_soft_loss_kl_and_mse_by_hand():
    student, teacher = torch.tensor([[1.0, 0.0, -1.0]]), torch.tensor([[0.0, 2.0, 0.0]])
    tau = 2.0
    p_t = torch.softmax(teacher / tau, -1)[0].tolist()
    p_s = torch.softmax(student / tau, -1)[0].tolist()
    kl = sum(t * math.log(t / s) for t, s in zip(p_t, p_s))
    assert soft_loss(student, teacher, tau, "kl").item() == pytest.approx(kl, rel=1e-5)
    assert soft_loss(student, teacher, tau, "mse").item() == pytest.approx(
        sum((t - s) ** 2 for t, s in zip(p_t, p_s)) / 3, rel=1e-5
    )
    assert soft_loss(teacher, teacher, tau, "kl").item() == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="soft loss"):
        soft_loss(student, teacher, tau, "js")


def test_pkd_is_zero_for_parallel_features_and_needs_matching_widths():
    teacher = torch.tensor([[1.0, 2.0, 2.0]])
    assert pkd_loss(5 * teacher, teacher).item() == pytest.approx(0.0, abs=1e-7)
    # normalised: (1/3, 2/3, 2/3) vs (1, 0, 0): MSE over 3 elements
    expected = ((1 / 3 - 1) ** 2 + (2 / 3) ** 2 + (2 / 3) ** 2) / 3
    assert pkd_loss(teacher, torch.tensor([[4.0, 0.0, 0.0]])).item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="project"):
        pkd_loss(torch.ones(1, 2), teacher)


def test_kd_loss_weights_and_limits():
    student_objective = torch.tensor(0.7)
    logits, teacher = torch.tensor([[1.0, -1.0]]), torch.tensor([[0.0, 1.0]])
    features, teacher_features = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    plain, _ = kd_loss(
        student_objective, logits, teacher, features, teacher_features, alpha=1.0, beta=0.0, temperature=3.0
    )
    assert plain.item() == pytest.approx(0.7)
    loss, parts = kd_loss(
        student_objective, logits, teacher, features, teacher_features, alpha=0.1, beta=100.0, temperature=3.0
    )
    expected = (
        0.1 * 0.7
        + 0.9 * 9.0 * soft_loss(logits, teacher, 3.0).item()
        + 100.0 * pkd_loss(features, teacher_features).item()
    )
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert parts["soft"].item() == pytest.approx(9.0 * soft_loss(logits, teacher, 3.0).item(), rel=1e-6)


def test_meta_teacher_loss_is_eq_9():
    t_logits, s_logits, labels = (
        torch.tensor([[2.0, 0.0], [0.0, 1.0]]),
        torch.tensor([[0.0, 0.0], [3.0, 0.0]]),
        torch.tensor([0, 1]),
    )
    log_p_t = torch.log_softmax(t_logits, -1)[[0, 1], labels]
    log_p_s = torch.log_softmax(s_logits, -1)[[0, 1], labels]
    expected = -(log_p_t.sum() + log_p_s.sum()).item() / (2 * 2)
    assert meta_teacher_loss(t_logits, s_logits, labels).item() == pytest.approx(expected, rel=1e-6)


def test_consistency_and_reward_by_hand():
    labels = torch.tensor([0, 1, 1])
    student = torch.tensor([[2.0, 0.0], [0.0, 0.0], [1.0, 0.0]])  # p(y): 0.881, 0.5, 0.269
    teacher = torch.tensor([[0.0, 0.0], [0.0, 1.0], [0.0, 0.0]])  # p(y): 0.5, 0.731, 0.5
    p_s = [1 / (1 + math.exp(-2)), 0.5, 1 / (1 + math.exp(1))]
    p_t = [0.5, 1 / (1 + math.exp(-1)), 0.5]
    assert consistency_loss(student, teacher, labels).item() == pytest.approx(
        sum(t - s for t, s in zip(p_t, p_s)) / 3, rel=1e-5
    )
    assert win_rate(student, teacher, labels).item() == pytest.approx(1 / 3)


def test_discounted_returns_by_hand():
    returns = discounted_returns(torch.tensor([1.0, 0.0, 1.0]), gamma=0.5)
    # G_t = sum_{i >= t} gamma^i r_i
    assert returns.tolist() == pytest.approx([1.0 + 0.25, 0.25, 0.25])
    with pytest.raises(ValueError, match="gamma"):
        discounted_returns(torch.ones(2), 1.5)


def test_reinforce_raises_the_probability_of_the_rewarded_action():
    """Toy bandit: action 0 earns 1, action 1 earns 0. REINFORCE with the mean baseline must move towards action 0."""
    torch.manual_seed(0)
    logits = torch.zeros(2, requires_grad=True)
    optimizer = torch.optim.SGD([logits], lr=0.5)
    start = torch.softmax(logits, 0)[0].item()
    for _ in range(30):
        distribution = torch.distributions.Categorical(logits=logits)
        actions = distribution.sample((8,))
        rewards = (actions == 0).float()
        loss = reinforce_loss(distribution.log_prob(actions), rewards, gamma=0.99)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert start == pytest.approx(0.5)
    assert torch.softmax(logits, 0)[0].item() > 0.9


def test_reinforce_without_reward_differences_does_not_move():
    logits = torch.zeros(3, requires_grad=True)
    distribution = torch.distributions.Categorical(logits=logits)
    actions = torch.tensor([0, 1, 2, 1])
    loss = reinforce_loss(distribution.log_prob(actions), torch.zeros(4), gamma=1.0)
    loss.backward()
    assert torch.count_nonzero(logits.grad) == 0
