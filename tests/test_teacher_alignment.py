"""A teacher's logits reach the KD loss in the student's label order, matched by name.

The teacher lists its labels as a 3-cycle of the student's. A reversed list (its own inverse) cannot tell
a permutation from its inverse; a 3-cycle can. Expected values use the columns written out by hand below,
never hf_mtkd's own index.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import Wav2Vec2FeatureExtractor

from testing_utils import LABELS, clips, save_tiny_classifier, tiny_audio_classifier as student
from hf_mtkd.mtkd import MultiTeacherDistillationConfig, MultiTeacherDistillationTrainer
from hf_mtkd.distillation.cache import add_teacher_logits
from hf_mtkd.distillation.teachers import TeacherSpec
from hf_mtkd.distillation.teachers import load_teacher, teacher_label_index, teacher_logits_for_batch

# Student order: angry, happy, neutral, sad. The teacher's: happy, neutral, angry, sad (angry -> happy -> neutral).
CYCLED = ["happy", "neutral", "angry", "sad"]
# Student class j is the teacher's class STUDENT_COLUMNS[j]: angry is the teacher's 2, happy its 0, neutral its 1.
STUDENT_COLUMNS = [2, 0, 1, 3]
FE = Wav2Vec2FeatureExtractor(return_attention_mask=False)


@pytest.fixture
def cycled_teacher(tmp_path):
    save_tiny_classifier(tmp_path / "t", CYCLED, seed=7)
    return load_teacher(TeacherSpec(model=str(tmp_path / "t"), language="en"), LABELS, FE)


def raw_logits(teacher, waveforms) -> torch.Tensor:
    inputs = FE([np.asarray(w) for w in waveforms], sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        return teacher.model(inputs.input_values).logits


def test_the_index_of_a_three_cycle_is_not_its_inverse():
    assert teacher_label_index(CYCLED, LABELS, "t").tolist() == STUDENT_COLUMNS
    assert teacher_label_index(LABELS, CYCLED, "t").tolist() == [1, 2, 0, 3]  # the other way round


def test_online_and_cached_teacher_logits_are_in_student_order(cycled_teacher):
    data = clips(4)
    expected = raw_logits(cycled_teacher, data["waveform"])[:, STUDENT_COLUMNS]
    inputs = FE(list(data["waveform"]), sampling_rate=16000, return_tensors="pt")
    online = teacher_logits_for_batch([cycled_teacher], {"input_values": inputs.input_values}, None)
    torch.testing.assert_close(online[0], expected)
    cached = add_teacher_logits(data, [cycled_teacher], FE, max_samples=16000)
    np.testing.assert_allclose(np.asarray(cached["teacher_logits"])[:, 0], expected.numpy(), rtol=1e-5, atol=1e-6)


def test_the_distilled_target_is_the_teacher_read_by_label_name(tmp_path, cycled_teacher):
    temperature = 2.0
    args = MultiTeacherDistillationConfig(
        output_dir=str(tmp_path / "out"),
        teachers=[{"model": "t", "language": "en"}],
        kd_lambda=1.0,
        temperature=temperature,
        report_to="none",
        eval_strategy="no",
        load_best_model_at_end=False,
    )
    model = student().eval()
    trainer = MultiTeacherDistillationTrainer(model=model, args=args, processing_class=FE, teachers=[cycled_teacher])
    data = clips(4)
    batch = trainer.data_collator([data[i] for i in range(4)])
    loss = trainer.compute_loss(model, dict(batch))

    with torch.no_grad():
        student_logits = model(batch["input_values"]).logits.double()
    raw = raw_logits(cycled_teacher, data["waveform"]).double()

    def kd_by_hand(teacher_logits):
        p = F.softmax(teacher_logits / temperature, dim=-1)
        log_q = F.log_softmax(student_logits / temperature, dim=-1)
        return ((p * (p.log() - log_q)).sum(-1).mean() * temperature**2).item()

    assert loss.item() == pytest.approx(kd_by_hand(raw[:, STUDENT_COLUMNS]), rel=1e-3)
    # Tiny random teachers are nearly uniform: make sure the raw or the inversely permuted logits would give
    # a loss the tolerance above tells apart.
    for wrong in (raw, raw[:, [1, 2, 0, 3]]):
        assert abs(kd_by_hand(wrong) - loss.item()) > 0.05 * loss.item()
