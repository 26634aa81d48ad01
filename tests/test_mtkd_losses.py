"""The MTKD loss and teacher weights as pure functions on tensors (SPEC section 1)."""

import math

import pytest
import torch
import torch.nn.functional as F

from hf_mtkd.distillation.losses import kl_per_sample
from hf_mtkd.mtkd.losses import (
    cosine_teacher_weights,
    language_teacher_weights,
    multi_teacher_kd_loss,
)


def test_identical_logits_give_zero_kl():
    logits = torch.randn(5, 4)
    for direction in ("forward", "reverse"):
        assert torch.allclose(kl_per_sample(logits, logits.clone(), 5.0, direction), torch.zeros(5), atol=1e-6)


def test_kl_hand_computed():
    # Logits differ by 1 between the two classes: P_S = [s, 1-s], P_T = [1-s, s], s = sigmoid(1/T).
    # KL(P_T || P_S) = (1-s) ln((1-s)/s) + s ln(s/(1-s)) = (2s - 1) * (1/T).
    student, teacher = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    for temperature in (1.0, 2.0, 5.0):
        s = 1 / (1 + math.exp(-1 / temperature))
        expected = (2 * s - 1) / temperature
        assert kl_per_sample(student, teacher, temperature).item() == pytest.approx(expected, rel=1e-5)


def test_directions_differ_on_asymmetric_example():
    student, teacher = torch.tensor([[2.0, 0.0, 0.0]]), torch.tensor([[0.0, 1.0, 3.0]])
    forward = kl_per_sample(student, teacher, 1.0, "forward")
    reverse = kl_per_sample(student, teacher, 1.0, "reverse")
    p_s, p_t = F.softmax(student, -1), F.softmax(teacher, -1)
    assert forward.item() == pytest.approx((p_t * (p_t / p_s).log()).sum().item(), rel=1e-5)
    assert reverse.item() == pytest.approx((p_s * (p_s / p_t).log()).sum().item(), rel=1e-5)
    assert forward.item() != pytest.approx(reverse.item(), rel=1e-2)


def test_one_teacher_equals_classic_kd():
    torch.manual_seed(0)
    student, teacher = torch.randn(6, 4), torch.randn(6, 4)
    labels = torch.randint(0, 4, (6,))
    lam, T = 0.75, 5.0
    loss, parts = multi_teacher_kd_loss(
        student, teacher.unsqueeze(0), labels, torch.ones(6, 1), kd_lambda=lam, temperature=T
    )
    classic_kl = F.kl_div(F.log_softmax(student / T, -1), F.softmax(teacher / T, -1), reduction="batchmean") * T**2
    classic = (1 - lam) * F.cross_entropy(student, labels) + lam * classic_kl
    assert loss.item() == pytest.approx(classic.item(), rel=1e-5)
    assert parts["kl"].item() == pytest.approx(classic_kl.item(), rel=1e-5)


def test_mean_reduction_divides_by_classes():
    student, teacher = torch.randn(3, 4), torch.randn(3, 4)
    kw = dict(kd_lambda=1.0, temperature=2.0)
    batchmean, _ = multi_teacher_kd_loss(student, teacher[None], None, torch.ones(3, 1), **kw)
    mean, _ = multi_teacher_kd_loss(student, teacher[None], None, torch.ones(3, 1), reduction="mean", **kw)
    assert mean.item() == pytest.approx(batchmean.item() / 4, rel=1e-6)


def test_hand_computed_two_teacher_example():
    # One sample, two classes, T = 1, lambda = 0.25, weights [0.75, 0.25].
    # Teacher A equals the student (KL 0); teacher B differs by 1 logit: KL = 2*sigmoid(1) - 1.
    student = torch.tensor([[1.0, 0.0]])
    teachers = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])
    labels = torch.tensor([0])
    weights = torch.tensor([[0.75, 0.25]])
    loss, parts = multi_teacher_kd_loss(student, teachers, labels, weights, kd_lambda=0.25, temperature=1.0)
    kl_b = 2 / (1 + math.exp(-1)) - 1
    ce = -math.log(1 / (1 + math.exp(-1)))
    assert parts["kl"].item() == pytest.approx(0.25 * kl_b, rel=1e-5)
    assert parts["ce"].item() == pytest.approx(ce, rel=1e-5)
    assert loss.item() == pytest.approx(0.75 * ce + 0.25 * 0.25 * kl_b, rel=1e-5)


def test_cosine_weights_per_batch_hand_computed():
    # Student [1, 0] for both samples; teacher 1 agrees (cos 1), teacher 2 is orthogonal (cos 0).
    student = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    teachers = torch.tensor([[[2.0, 0.0], [3.0, 0.0]], [[0.0, 1.0], [0.0, 2.0]]])
    weights = cosine_teacher_weights(student, teachers, 0.25)
    expected = torch.softmax(torch.tensor([1.0, 0.0]) / 0.25, dim=0)
    assert torch.allclose(weights, expected.expand(2, 2), atol=1e-6)
    assert torch.allclose(weights.sum(-1), torch.ones(2))


def test_cosine_weights_per_batch_are_shared_and_per_sample_are_not():
    torch.manual_seed(1)
    student, teachers = torch.randn(5, 4), torch.randn(3, 5, 4)
    batch = cosine_teacher_weights(student, teachers, 0.25, per_sample=False)
    sample = cosine_teacher_weights(student, teachers, 0.25, per_sample=True)
    assert torch.allclose(batch, batch[0].expand_as(batch))
    assert not torch.allclose(sample, sample[0].expand_as(sample))
    assert torch.allclose(batch.sum(-1), torch.ones(5)) and torch.allclose(sample.sum(-1), torch.ones(5))
    # Per batch = softmax of the mean per-sample cosine.
    cos = F.cosine_similarity(student[None], teachers, dim=-1).mean(1)
    assert torch.allclose(batch[0], torch.softmax(cos / 0.25, 0), atol=1e-6)


def test_language_weights_route_and_fall_back():
    language_ids = torch.tensor([0, 1, 2, 0])  # language 2 has no teacher
    teacher_languages = torch.tensor([0, 1])
    fallback = torch.tensor([[0.3, 0.7]] * 4)
    weights = language_teacher_weights(language_ids, teacher_languages, fallback)
    assert weights.tolist() == [[1.0, 0.0], [0.0, 1.0], pytest.approx([0.3, 0.7]), [1.0, 0.0]]


def test_language_weights_split_between_teachers_of_one_language():
    weights = language_teacher_weights(torch.tensor([0]), torch.tensor([0, 0, 1]), torch.zeros(1, 3))
    assert weights.tolist() == [[0.5, 0.5, 0.0]]


def test_gradients_reach_only_the_student():
    student = torch.randn(4, 3, requires_grad=True)
    teachers = torch.randn(2, 4, 3, requires_grad=True)
    weights = cosine_teacher_weights(student, teachers, 0.25)
    loss, _ = multi_teacher_kd_loss(
        student, teachers, torch.tensor([0, 1, 2, 0]), weights, kd_lambda=0.5, temperature=5.0
    )
    loss.backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teachers.grad is None


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="teacher_logits must be"):
        multi_teacher_kd_loss(
            torch.randn(2, 3), torch.randn(2, 3), None, torch.ones(2, 1), kd_lambda=0.5, temperature=1.0
        )
    with pytest.raises(ValueError, match="direction"):
        kl_per_sample(torch.randn(2, 3), torch.randn(2, 3), 1.0, "sideways")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_finite_with_large_low_precision_logits(dtype):
    student = (torch.randn(4, 4) * 1e4).to(dtype)
    teachers = (torch.randn(2, 4, 4) * 1e4).to(dtype)
    weights = cosine_teacher_weights(student, teachers, 0.25)
    loss, _ = multi_teacher_kd_loss(
        student, teachers, torch.tensor([0, 0, 1, 1]), weights, kd_lambda=0.25, temperature=5.0
    )
    assert torch.isfinite(loss)


def test_label_smoothing_is_the_trainers_label_smoother_on_the_ce_only():
    from transformers.trainer_pt_utils import LabelSmoother

    torch.manual_seed(0)
    student, teachers = torch.randn(6, 4), torch.randn(2, 6, 4)
    labels, weights = torch.tensor([0, 1, 2, 3, 0, 1]), torch.full((6, 2), 0.5)
    smoother = LabelSmoother(epsilon=0.1)
    ce_only, _ = multi_teacher_kd_loss(
        student, teachers, labels, weights, kd_lambda=0.0, temperature=2.0, label_smoothing=0.1
    )
    assert ce_only.item() == pytest.approx(smoother({"logits": student}, labels).item(), rel=1e-6)
    # Hand-computed: (1 - eps) * NLL + eps * mean over classes of -log p.
    log_p = F.log_softmax(student, -1)
    by_hand = (0.9 * -log_p.gather(1, labels[:, None]).squeeze(1) + 0.1 * -log_p.mean(-1)).mean()
    assert ce_only.item() == pytest.approx(by_hand.item(), rel=1e-6)
    smooth, parts = multi_teacher_kd_loss(
        student, teachers, labels, weights, kd_lambda=0.25, temperature=2.0, label_smoothing=0.1
    )
    plain, plain_parts = multi_teacher_kd_loss(student, teachers, labels, weights, kd_lambda=0.25, temperature=2.0)
    assert parts["kl"].item() == plain_parts["kl"].item() and parts["ce"].item() != pytest.approx(
        plain_parts["ce"].item()
    )
    assert smooth.item() == pytest.approx(0.75 * ce_only.item() + 0.25 * parts["kl"].item(), rel=1e-6)


@pytest.mark.parametrize("per_sample", [False, True], ids=["batch_cosine", "per_sample_cosine"])
def test_the_student_gradient_treats_the_teacher_weights_as_constants(per_sample):
    # d/ds of (1 - lam) CE + lam T^2 mean_b sum_i w_bi KL(p_ib || q_b), q = softmax(s / T), with w held fixed:
    # (1 - lam) (softmax(s) - onehot) / B + lam T sum_i w_bi (q_b - p_ib) / B.
    torch.manual_seed(0)
    batch, lam, T = 5, 0.5, 2.0
    student = torch.randn(batch, 4, requires_grad=True)
    teachers = torch.randn(3, batch, 4)
    labels = torch.tensor([0, 1, 2, 3, 0])
    weights = cosine_teacher_weights(student, teachers, 0.25, per_sample=per_sample)
    assert not weights.requires_grad
    loss, _ = multi_teacher_kd_loss(student, teachers, labels, weights, kd_lambda=lam, temperature=T)
    (grad,) = torch.autograd.grad(loss, student)

    s = student.detach()
    q, p = F.softmax(s / T, -1), F.softmax(teachers / T, -1)
    ce_grad = (F.softmax(s, -1) - F.one_hot(labels, 4)) / batch
    kd_grad = T * (weights.transpose(0, 1)[..., None] * (q[None] - p)).sum(0) / batch
    torch.testing.assert_close(grad, (1 - lam) * ce_grad + lam * kd_grad)

    # Weights a caller built with a graph to the student are constants in the loss all the same.
    cos = F.cosine_similarity(student[None], teachers, dim=-1).transpose(0, 1)
    attached = torch.softmax(cos / 0.25, dim=-1)
    loss, _ = multi_teacher_kd_loss(student, teachers, labels, attached, kd_lambda=lam, temperature=T)
    (grad_attached,) = torch.autograd.grad(loss, student)
    torch.testing.assert_close(
        grad_attached,
        (1 - lam) * ce_grad + lam * T * (attached.detach().transpose(0, 1)[..., None] * (q[None] - p)).sum(0) / batch,
    )
