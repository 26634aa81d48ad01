"""MultiTeacherDistillationTrainer on its own, as TRL's trainers are used: no training entry, no recipe.

Teachers come as ids/paths (loaded in `__init__`), as models, or as loaded `Teacher`s; batches come from the
trainer's default collator; the card comes from `create_model_card`.
"""

import pytest
import torch
from huggingface_hub import ModelCard
from transformers import AutoModelForAudioClassification, Wav2Vec2FeatureExtractor

from testing_utils import LABELS, RATE, clips, save_tiny_classifier, tiny_audio_classifier as student
from hf_mtkd.mtkd import MultiTeacherDistillationConfig, MultiTeacherDistillationTrainer
from hf_mtkd.distillation.teachers import Teacher
from hf_mtkd.training import SERTrainingArguments

def config(tmp_path, teachers, **overrides):
    return MultiTeacherDistillationConfig(
        output_dir=str(tmp_path / "out"),
        teachers=teachers,
        max_steps=3,
        logging_steps=1,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        report_to="none",
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
        seed=0,
        **overrides,
    )


@pytest.fixture
def teacher_paths(tmp_path):
    save_tiny_classifier(tmp_path / "t_en", LABELS, seed=1)
    save_tiny_classifier(tmp_path / "t_fi", list(reversed(LABELS)), seed=2)  # aligned by label name
    return [{"model": str(tmp_path / "t_en"), "language": "en"}, {"model": str(tmp_path / "t_fi"), "language": "fi"}]


def test_trainer_loads_teachers_from_paths_and_trains_with_its_default_collator(tmp_path, teacher_paths):
    model = student()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainer = MultiTeacherDistillationTrainer(
        model=model, args=config(tmp_path, teacher_paths, teacher_weighting="language", kd_lambda=0.5),
        train_dataset=clips(), processing_class=Wav2Vec2FeatureExtractor(return_attention_mask=False),
        languages=["en", "fi"],
    )
    assert [t.name for t in trainer.teachers] == ["en", "fi"]
    assert all(not p.requires_grad for t in trainer.teachers for p in t.model.parameters())
    teacher_state = {t.name: {k: v.clone() for k, v in t.model.state_dict().items()} for t in trainer.teachers}
    batch = trainer.data_collator([clips()[i] for i in range(4)])
    assert batch["language_id"].tolist() == [0, 1, 0, 1] and batch["input_values"].shape == (4, int(0.3 * RATE))

    trainer.train()
    changed = [name for name, p in model.named_parameters() if not torch.equal(p.detach().cpu(), before[name])]
    assert any("encoder.layers" in name for name in changed) and any("classifier" in name for name in changed)
    for t in trainer.teachers:
        assert all(torch.equal(v, teacher_state[t.name][k]) for k, v in t.model.state_dict().items())
        assert not t.model.training
    logged = {key for entry in trainer.state.log_history for key in entry}
    assert {"ce_loss", "kd_loss", "teacher_weight/en/en", "teacher_weight/fi/fi"} <= logged
    assert trainer.mean_teacher_weights() == {"en": {"en": 1.0, "fi": 0.0}, "fi": {"en": 0.0, "fi": 1.0}}

    trainer.create_model_card()  # no training entry: the card speaks from the trainer and its arguments
    card = ModelCard((tmp_path / "out" / "README.md").read_text())
    assert "mtkd" in card.data.tags and "knowledge-distillation" in card.data.tags
    assert "language-aware multi-teacher knowledge distillation (MTKD)" in card.text
    assert "| fi | fi | local checkpoint `t_fi` |" in card.text and "| kd_lambda | 0.5 |" in card.text
    assert "| fi | 0.000 | 1.000 |" in card.text  # the mean weights of this (only) process
    assert "No evaluation results were recorded" in card.text


def test_teachers_as_models_or_loaded_teachers_give_the_same_loss(tmp_path, teacher_paths):
    fe = Wav2Vec2FeatureExtractor(return_attention_mask=False)
    args = config(tmp_path, teacher_paths)
    by_path = MultiTeacherDistillationTrainer(model=student(), args=args, processing_class=fe)
    models = [AutoModelForAudioClassification.from_pretrained(spec["model"]) for spec in teacher_paths]
    by_model = MultiTeacherDistillationTrainer(model=student(), args=args, processing_class=fe, teachers=models)
    loaded = MultiTeacherDistillationTrainer(
        model=student(), args=args, processing_class=fe, teachers=by_path.teachers
    )
    assert all(isinstance(t, Teacher) for t in by_model.teachers) and loaded.teachers == by_path.teachers
    batch = by_path.data_collator([clips()[i] for i in range(4)])
    losses = [
        trainer.compute_loss(trainer.model.eval(), dict(batch)).item() for trainer in (by_path, by_model, loaded)
    ]
    assert losses[0] == pytest.approx(losses[1], abs=1e-6) and losses[0] == pytest.approx(losses[2], abs=1e-6)


def test_a_teacher_with_another_front_end_gets_its_own_inputs_from_the_default_collator(tmp_path, teacher_paths):
    Wav2Vec2FeatureExtractor(sampling_rate=8000, return_attention_mask=True).save_pretrained(tmp_path / "t_fi")
    trainer = MultiTeacherDistillationTrainer(model=student(), args=config(tmp_path, teacher_paths),
                                              processing_class=Wav2Vec2FeatureExtractor(return_attention_mask=False))
    batch = trainer.data_collator([clips()[i] for i in range(2)])
    own = batch["teacher_inputs"]
    assert own[0] is None  # the en teacher shares the student's inputs
    assert own[1]["input_values"].shape == (2, int(0.3 * 8000)) and "attention_mask" in own[1]
    assert torch.isfinite(trainer.compute_loss(trainer.model, batch))


def test_standalone_errors_name_what_is_missing(tmp_path, teacher_paths):
    with pytest.raises(TypeError, match="MultiTeacherDistillationConfig"):
        MultiTeacherDistillationTrainer(model=student(), args=SERTrainingArguments(output_dir=str(tmp_path)))
    with pytest.raises(ValueError, match="pass processing_class"):
        MultiTeacherDistillationTrainer(model=student(), args=config(tmp_path, teacher_paths))
    with pytest.raises(ValueError, match="Got 1 teachers for the 2"):
        MultiTeacherDistillationTrainer(
            model=student(),
            args=config(tmp_path, teacher_paths),
            processing_class=Wav2Vec2FeatureExtractor(),
            teachers=[teacher_paths[0]["model"]],
        )
    # From the logit cache the trainer needs no teacher; batches then carry `teacher_logits`.
    cached = MultiTeacherDistillationTrainer(
        model=student(),
        args=config(tmp_path, teacher_paths, use_teacher_logit_cache=True),
        processing_class=Wav2Vec2FeatureExtractor(),
    )
    assert cached.teachers == []


def test_label_smoothing_factor_is_honoured(tmp_path, teacher_paths):
    from hf_mtkd.mtkd.losses import multi_teacher_kd_loss

    fe = Wav2Vec2FeatureExtractor(return_attention_mask=False)
    losses = {}
    for factor in (0.0, 0.1):
        trainer = MultiTeacherDistillationTrainer(model=student(), args=config(tmp_path, teacher_paths, kd_lambda=0.5,
                                                  teacher_weighting="uniform", label_smoothing_factor=factor),
                                                  processing_class=fe)
        batch = trainer.data_collator([clips()[i] for i in range(4)])
        losses[factor] = trainer.compute_loss(trainer.model.eval(), dict(batch)).item()
    logits = trainer.model(input_values=batch["input_values"]).logits
    teachers = torch.stack(
        [t.model(input_values=batch["input_values"]).logits[:, t.label_index] for t in trainer.teachers]
    )
    expected, _ = multi_teacher_kd_loss(logits, teachers, batch["labels"], torch.full((4, 2), 0.5), kd_lambda=0.5,
                                        temperature=5.0, label_smoothing=0.1)
    assert losses[0.1] == pytest.approx(expected.item(), rel=1e-5) and losses[0.1] != pytest.approx(
        losses[0.0], abs=1e-5
    )


def test_a_teacher_checkpoint_without_its_head_is_an_error_naming_the_teacher_and_keys(tmp_path, teacher_paths):
    from safetensors.torch import load_file, save_file

    weights = tmp_path / "t_fi" / "model.safetensors"
    state = load_file(weights)
    save_file({k: v for k, v in state.items() if not k.startswith(("classifier.", "projector."))}, weights,
              metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"Teacher 'fi' \(.*t_fi\) lacks 4 weight\(s\).*: classifier\.bias, "
                                         r"classifier\.weight, projector\.bias, projector\.weight\."):
        MultiTeacherDistillationTrainer(model=student(), args=config(tmp_path, teacher_paths),
                                        processing_class=Wav2Vec2FeatureExtractor())


class SeenRows:
    """What each teacher was run on: the input_values of every forward call."""

    def __init__(self, teachers):
        self.seen = {t.name: [] for t in teachers}
        self.handles = [t.model.register_forward_pre_hook(self._hook(t.name), with_kwargs=True) for t in teachers]

    def _hook(self, name):
        def hook(module, args, kwargs):
            self.seen[name].append(kwargs["input_values"].detach().clone())
        return hook

    def close(self):
        for handle in self.handles:
            handle.remove()


def _loss_with_every_teacher_on_every_sample(trainer, batch):
    """The loss as it was computed before routing: every teacher's logits for every sample."""
    from hf_mtkd.mtkd.losses import multi_teacher_kd_loss
    from hf_mtkd.distillation.teachers import teacher_logits_for_batch

    args = trainer.args
    logits = trainer.model(input_values=batch["input_values"]).logits
    teachers = teacher_logits_for_batch(
        trainer.teachers, {"input_values": batch["input_values"]}, batch.get("teacher_inputs")
    )
    weights = trainer.teacher_weights(logits, teachers, batch["language_id"])
    loss, _ = multi_teacher_kd_loss(logits, teachers, batch["labels"], weights, kd_lambda=args.kd_lambda,
                                    temperature=args.temperature)
    return loss, weights


@pytest.mark.parametrize("languages, per_sample", [(["en", "fi"], False), (["en", "fi", "fr"], True),
                                                   (["en", "fi", "fr"], False)])
def test_language_routing_runs_each_teacher_on_its_own_samples_only(tmp_path, teacher_paths, languages, per_sample):
    # The fi teacher has a front end of its own (8 kHz): its rows are cut from its own inputs.
    Wav2Vec2FeatureExtractor(sampling_rate=8000, return_attention_mask=True).save_pretrained(tmp_path / "t_fi")
    trainer = MultiTeacherDistillationTrainer(
        model=student(), args=config(tmp_path, teacher_paths, teacher_weighting="language", kd_lambda=0.5,
                                     cosine_per_sample=per_sample),
        processing_class=Wav2Vec2FeatureExtractor(return_attention_mask=False), languages=languages)
    rows = clips(6).to_list()
    for i, row in enumerate(rows):
        row["language"] = languages[i % len(languages)]
    batch = trainer.data_collator(rows)
    trainer.model.eval()
    seen = SeenRows(trainer.teachers)
    loss = trainer.compute_loss(trainer.model, dict(batch))
    seen.close()
    language = [row["language"] for row in rows]
    fallback = [lang not in ("en", "fi") for lang in language]
    own_inputs = {"en": batch["input_values"], "fi": batch["teacher_inputs"][1]["input_values"]}
    for name in ("en", "fi"):
        if any(fallback) and not per_sample:  # the batch-level cosine needs every teacher on every sample
            expected = [True] * len(rows)
        else:
            expected = [lang == name or fb for lang, fb in zip(language, fallback)]
        assert len(seen.seen[name]) == 1
        torch.testing.assert_close(seen.seen[name][0], own_inputs[name][torch.tensor(expected)])
    reference, weights = _loss_with_every_teacher_on_every_sample(trainer, batch)
    assert loss.item() == pytest.approx(reference.item(), rel=1e-5, abs=1e-6)
    logged = {key: values[-1] for key, values in trainer._metrics["eval"].items() if key.startswith("teacher_weight/")}
    assert logged["teacher_weight/en"] == pytest.approx(weights[:, 0].mean().item(), rel=1e-6)
    assert logged["teacher_weight/fi/fi"] == 1.0 and logged["teacher_weight/en/fi"] == 0.0
