"""The audio + text KD loss against hand computations, identities and limits."""

from __future__ import annotations

import math

import pytest
import torch

from hf_mtkd.audio_text import audio_text_kd_loss, masked_mse


def _softmax(values):
    exps = [math.exp(v) for v in values]
    return [e / sum(exps) for e in exps]


def test_loss_against_hand_computation():
    student = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 1.0]])
    teacher = torch.tensor([[1.0, 1.0, 0.0], [0.0, 2.0, 0.0]])
    labels = torch.tensor([0, 2])
    s_hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [9.0, 9.0]]])
    t_hidden = torch.tensor([[[1.0, 0.0], [2.0, 4.0]], [[1.0, 1.0], [0.0, 0.0]]])
    mask = torch.tensor([[1, 1], [1, 0]])  # the second sample's second token is padding
    T, alpha, gamma = 2.0, 0.3, 0.7

    ce = -(math.log(_softmax([2.0, 0.0, -1.0])[0]) + math.log(_softmax([0.5, 0.5, 1.0])[2])) / 2
    kl = 0.0
    for s, t in zip(student.tolist(), teacher.tolist()):
        p_s, p_t = _softmax([v / T for v in s]), _softmax([v / T for v in t])
        kl += sum(pt * math.log(pt / ps) for pt, ps in zip(p_t, p_s))
    kl /= 2
    # Unmasked positions: (0,0): 0 + 4; (0,1): 1 + 0; (1,0): 1 + 1 -> 7 over 3 positions x 2 dims.
    mse = 7.0 / 6.0
    expected = alpha * T**2 * kl + (1 - alpha) * ce + gamma * mse

    loss, parts = audio_text_kd_loss(
        student, labels, teacher, s_hidden, t_hidden, mask, temperature=T, alpha=alpha, gamma=gamma
    )
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert parts["ce"].item() == pytest.approx(ce, rel=1e-6)
    assert parts["kl"].item() == pytest.approx(kl, rel=1e-6)
    assert parts["mse"].item() == pytest.approx(mse, rel=1e-6)


def test_identities_and_limits():
    torch.manual_seed(0)
    logits, labels = torch.randn(4, 5), torch.tensor([0, 1, 2, 3])
    hidden = torch.randn(4, 3, 8)
    ce = torch.nn.functional.cross_entropy(logits, labels)
    # A teacher equal to the student adds nothing but (1 - alpha) on CE.
    loss, parts = audio_text_kd_loss(logits, labels, logits.clone(), hidden, hidden.clone(), alpha=0.5, gamma=1.0)
    assert parts["kl"].item() == pytest.approx(0.0, abs=1e-7) and parts["mse"].item() == 0.0
    assert loss.item() == pytest.approx(0.5 * ce.item(), rel=1e-6)
    # alpha = 0 and gamma = 0: plain cross-entropy, no teacher needed.
    loss, parts = audio_text_kd_loss(logits, labels, alpha=0.0, gamma=0.0)
    assert loss.item() == pytest.approx(ce.item(), rel=1e-6) and set(parts) == {"ce"}
    # alpha = 1, gamma = 0: pure soft-label KD, T^2-scaled.
    teacher = torch.randn(4, 5)
    loss, parts = audio_text_kd_loss(logits, labels, teacher, alpha=1.0, gamma=0.0, temperature=3.0)
    assert loss.item() == pytest.approx(9.0 * parts["kl"].item(), rel=1e-6)


def test_feature_term_ignores_padding():
    student, teacher = torch.zeros(2, 4, 3), torch.zeros(2, 4, 3)
    student[1, 2:] = 100.0  # only in the padding of sample 1
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    assert masked_mse(student, teacher, mask).item() == 0.0
    assert masked_mse(student, teacher).item() > 0.0
    with pytest.raises(ValueError, match="differ in shape"):
        masked_mse(torch.zeros(1, 2, 3), torch.zeros(1, 2, 4))


def test_gradients_flow_to_the_student_only():
    student = torch.randn(3, 4, requires_grad=True)
    s_hidden = torch.randn(3, 2, 6, requires_grad=True)
    teacher, t_hidden = torch.randn(3, 4), torch.randn(3, 2, 6)
    loss, _ = audio_text_kd_loss(student, torch.tensor([0, 1, 2]), teacher, s_hidden, t_hidden)
    loss.backward()
    assert student.grad.abs().sum() > 0 and s_hidden.grad.abs().sum() > 0


@pytest.mark.parametrize("kwargs, message", [
    ({"alpha": 0.5, "gamma": 0.0}, "needs teacher logits"),
    ({"alpha": 0.0, "gamma": 1.0}, "needs the student's and the teacher's text hidden states"),
    ({"alpha": 1.5, "gamma": 0.0}, "alpha must be in"),
    ({"alpha": 0.0, "gamma": 0.0, "temperature": 0.0}, "temperature must be > 0"),
])
def test_bad_settings_are_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        audio_text_kd_loss(torch.zeros(1, 2), torch.tensor([0]), **kwargs)
