"""MoCo pieces of the meta-curriculum student: the momentum rule, the labelled queue, SpecAugment views."""

import pytest
import torch

from hf_mtkd.models.inverted_transformer import InvertedTransformerConfig, InvertedTransformerForFeatureClassification
from hf_mtkd.meta_curriculum.contrastive import (
    ContrastiveStudentObjective,
    LabelledQueue,
    MomentumKeyEncoder,
    spec_augment,
)

TINY_STUDENT = {"num_frames": 12, "num_channels": 10, "d_model": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
                "intermediate_size": 16, "classifier_hidden_size": 8, "contrastive_dim": 4}


def tiny_student(seed=0, **overrides):
    torch.manual_seed(seed)
    config = InvertedTransformerConfig(**{**TINY_STUDENT, **overrides}, id2label={0: "a", 1: "b", 2: "c"})
    return InvertedTransformerForFeatureClassification(config)


def test_key_encoder_moves_by_the_momentum_rule():
    student = tiny_student()
    keys = MomentumKeyEncoder(student, momentum=0.9)
    with torch.no_grad():
        for p in student.parameters():
            p.add_(1.0)
    before = [p.clone() for p in keys.encoder.parameters()]
    keys.update(student)
    for k_before, k_after, q in zip(before, keys.encoder.parameters(), student.parameters()):
        torch.testing.assert_close(k_after, 0.9 * k_before + 0.1 * q)
    assert not any(p.requires_grad for p in keys.encoder.parameters())
    keys.train()
    assert not keys.encoder.training  # keys are computed without dropout


def test_queue_rotates_and_keeps_the_newest_keys():
    queue = LabelledQueue(size=5, dim=2)
    assert queue.contents()[0].shape == (0, 2)
    queue.enqueue(torch.arange(6.0).view(3, 2), torch.tensor([0, 1, 2]))
    keys, labels = queue.contents()
    assert labels.tolist() == [0, 1, 2] and queue.pointer == 3
    queue.enqueue(torch.arange(6.0, 12.0).view(3, 2), torch.tensor([3, 4, 5]))
    keys, labels = queue.contents()
    # Slots 3, 4 took labels 3, 4; label 5 wrapped around onto slot 0 (the oldest entry).
    assert labels.tolist() == [5, 1, 2, 3, 4] and queue.pointer == 1 and queue.filled == 5
    assert keys[0].tolist() == [10.0, 11.0]
    queue.enqueue(torch.zeros(7, 2), torch.arange(10, 17))  # more than the queue holds: the newest 5 stay
    assert sorted(queue.contents()[1].tolist()) == [12, 13, 14, 15, 16]


def test_spec_augment_masks_bounded_stripes():
    torch.manual_seed(0)
    features = torch.ones(64, 30, 20)  # (B, T, N)
    masked = spec_augment(features, freq_mask_param=6, time_mask_param=4)
    zero_channels = (masked == 0).all(dim=1).sum(dim=1)  # channels zero at every frame, per clip
    zero_frames = (masked == 0).all(dim=2).sum(dim=1)
    assert zero_channels.max() <= 5 and zero_frames.max() <= 3
    assert zero_channels.max() >= 1 and zero_frames.max() >= 1  # some clips got masks
    assert len({tuple(m.flatten().tolist()) for m in (masked == 0)}) > 1  # drawn per clip
    assert torch.equal(spec_augment(features, 0, 0), features)


def test_spec_augment_same_masks_on_every_upstream_layer():
    torch.manual_seed(1)
    features = torch.ones(8, 3, 30, 20)  # (B, L, T, N)
    masked = spec_augment(features, freq_mask_param=10, time_mask_param=10)
    assert torch.equal(masked[:, 0], masked[:, 1]) and torch.equal(masked[:, 0], masked[:, 2])


def test_objective_with_lambda_zero_is_plain_cross_entropy():
    student = tiny_student()
    objective = ContrastiveStudentObjective(supcon_lambda=0.0, temperature=0.1, queue_size=8, momentum=0.9,
                                            freq_mask_param=2, time_mask_param=2)
    features, labels = torch.randn(4, 12, 10), torch.tensor([0, 1, 2, 0])
    out = student(features)
    loss, _ = objective.loss(student, features, labels, out.logits, out.pooled_output)
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(out.logits, labels))
    assert objective.key_encoder is None


def test_objective_fills_the_queue_and_trains_the_contrastive_head():
    student = tiny_student()
    objective = ContrastiveStudentObjective(supcon_lambda=1.0, temperature=0.1, queue_size=6, momentum=0.5,
                                            freq_mask_param=2, time_mask_param=2)
    features, labels = torch.randn(4, 12, 10), torch.tensor([0, 1, 2, 0])
    out = student(features)
    loss, parts = objective.loss(student, features, labels, out.logits, out.pooled_output)
    loss.backward()
    assert objective.queue.filled == 4 and loss.item() == pytest.approx(parts["supcon"].item())
    assert student.contrastive_head[0].weight.grad.abs().sum() > 0
    assert student.classifier[-1].weight.grad is None or student.classifier[-1].weight.grad.abs().sum() == 0
