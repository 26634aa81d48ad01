"""Gradient accumulation: GA=2 x batch 4 must train like GA=1 x batch 8 for every method.

The Trainer divides a per-batch-mean loss by the accumulation steps only when it is told the loss is
not already normalised over the accumulated batch; every hf_mtkd loss is a per-batch mean, and stock
audio classifiers ignore `num_items_in_batch`. Like is compared with like: eight equal-length clips (no
padding), no random crop, dropout and SpecAugment off, so one optimizer step sees the same eight clips
whichever way they are batched. MTKD uses per-sample (cosine) or per-language weights here: the
authors' batch-level cosine weights are by definition a function of the micro-batch.
"""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, TrainerCallback, Wav2Vec2FeatureExtractor

from testing_utils import LABELS, TINY_W2V2, clips, save_tiny_classifier, tiny_audio_classifier
from hf_mtkd.mtkd import MultiTeacherDistillationConfig, MultiTeacherDistillationTrainer
from hf_mtkd.distillation.cache import add_teacher_logits
from hf_mtkd.self_distillation import SelfDistillationConfig, SelfDistillationTrainer
from hf_mtkd.models.early_exit import EarlyExitForAudioClassification
from hf_mtkd.training import SERTrainingArguments
from hf_mtkd.training.trainer import SERTrainer

NO_DROPOUT = {
    "hidden_dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.0, "feat_proj_dropout": 0.0,
    "final_dropout": 0.0, "layerdrop": 0.0, "mask_time_prob": 0.0,
}
FE = Wav2Vec2FeatureExtractor(return_attention_mask=False)


class GradientsBeforeStep(TrainerCallback):
    """The accumulated gradients, taken just before the (only) optimizer step."""

    def __init__(self):
        self.grads = None

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.grads = {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}


def _student(seed=0):
    return tiny_audio_classifier(LABELS, seed, **NO_DROPOUT)


def _early_exit_student():
    torch.manual_seed(0)
    backbone = AutoConfig.for_model("wav2vec2", **TINY_W2V2, **NO_DROPOUT)
    return EarlyExitForAudioClassification.from_backbone(
        backbone, exit_layers=[1], exit_block="none", head_hidden_size=16, id2label=dict(enumerate(LABELS)))


def _common(tmp_path, batch, accumulation):
    return dict(output_dir=str(tmp_path / f"b{batch}_ga{accumulation}"), per_device_train_batch_size=batch,
                gradient_accumulation_steps=accumulation, max_steps=1, logging_steps=1, max_grad_norm=0.0,
                learning_rate=1e-3, report_to="none", eval_strategy="no", save_strategy="no",
                load_best_model_at_end=False, seed=0)


@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    root = tmp_path_factory.mktemp("ga_teachers")
    save_tiny_classifier(root / "t_en", LABELS, seed=1)
    save_tiny_classifier(root / "t_fi", list(reversed(LABELS)), seed=2)
    return [{"model": str(root / "t_en"), "language": "en"}, {"model": str(root / "t_fi"), "language": "fi"}]


def _trainer(kind, tmp_path, teachers, batch, accumulation):
    common = _common(tmp_path, batch, accumulation)
    if kind == "finetune":
        return SERTrainer(model=_student(), args=SERTrainingArguments(**common), train_dataset=clips(8),
                          processing_class=FE)
    if kind == "self_distillation":
        # The raw similarity: the centred one (the default) subtracts each micro-batch's own mean, so by design it
        # depends on how a batch is split (like MTKD's per-batch cosine weights; see the next test).
        return SelfDistillationTrainer(
            model=_early_exit_student(),
            args=SelfDistillationConfig(**common, centre_similarity=False),
            train_dataset=clips(8),
            processing_class=FE,
        )
    if kind == "mtkd_online":
        args = MultiTeacherDistillationConfig(**common, teachers=teachers, teacher_weighting="language", kd_lambda=0.5)
        return MultiTeacherDistillationTrainer(model=_student(), args=args, train_dataset=clips(8),
                                               processing_class=FE, languages=["en", "fi"])
    # mtkd_cached: the batches carry the teachers' logits; the trainer runs no teacher.
    args = MultiTeacherDistillationConfig(**common, teachers=teachers, teacher_weighting="cosine",
                                          cosine_per_sample=True, kd_lambda=0.5, use_teacher_logit_cache=True)
    online = MultiTeacherDistillationTrainer(
        model=_student(), args=args, processing_class=FE, teachers=[t["model"] for t in teachers]
    )
    cached = add_teacher_logits(clips(8), online.teachers, FE, max_samples=16000)
    return MultiTeacherDistillationTrainer(model=_student(), args=args, train_dataset=cached, processing_class=FE,
                                           languages=["en", "fi"])


@pytest.mark.parametrize("kind", ["finetune", "mtkd_online", "mtkd_cached", "self_distillation"])
def test_accumulating_two_batches_of_4_equals_one_batch_of_8(kind, tmp_path, teachers):
    runs = {}
    for batch, accumulation in ((8, 1), (4, 2)):
        trainer = _trainer(kind, tmp_path, teachers, batch, accumulation)
        grads = GradientsBeforeStep()
        trainer.add_callback(grads)
        trainer.train()
        logged = next(entry for entry in trainer.state.log_history if "loss" in entry)
        runs[accumulation] = (grads.grads, logged)
    (grads_one, log_one), (grads_two, log_two) = runs[1], runs[2]
    assert grads_one.keys() == grads_two.keys() and any("classifier" in name for name in grads_one)
    for name in grads_one:
        torch.testing.assert_close(grads_two[name], grads_one[name], rtol=1e-4, atol=1e-5,
                                   msg=lambda m, n=name: f"{kind} {n}: {m}")
    # The logged loss (and the method's logged parts) are means over the 8 clips either way.
    parts = [key for key in log_one if key in ("loss", "ce_loss", "kd_loss", "ce", "ce_exits", "kl", "similarity")]
    assert "loss" in parts
    for key in parts:
        assert log_two[key] == pytest.approx(log_one[key], rel=1e-4, abs=1e-6), key


def test_centred_similarity_depends_on_the_micro_batch_split(tmp_path, teachers):
    """The documented exception: with centre_similarity (the default) each micro-batch is centred on its own
    mean, so GA 2 x 4 and GA 1 x 8 give different self-distillation gradients (the README says so)."""
    grads = {}
    for accumulation, batch in ((2, 4), (1, 8)):
        common = _common(tmp_path / f"ga{accumulation}", batch, accumulation)
        trainer = SelfDistillationTrainer(model=_early_exit_student(), args=SelfDistillationConfig(**common),
                                          train_dataset=clips(8), processing_class=FE)
        assert trainer.args.centre_similarity
        recorder = GradientsBeforeStep()
        trainer.add_callback(recorder)
        trainer.train()
        grads[accumulation] = recorder.grads
    encoder = [name for name in grads[1] if "encoder" in name]
    assert encoder and any(not torch.allclose(grads[1][name], grads[2][name], atol=1e-6) for name in encoder)
