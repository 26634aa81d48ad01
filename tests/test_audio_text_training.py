"""Training the audio + text models: the two phases, frozen parts, KD from an online or cached teacher."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from audio_text_fakes import tiny_model, tiny_processor, write_text_corpus
from hf_mtkd.arguments import DataArguments, ModelArguments
from hf_mtkd.audio_text import AudioTextDistillationConfig, AudioTextModelArguments, fit_audio_text
from hf_mtkd.models.audio_text import AudioTextForSequenceClassification, AudioTextProcessor
from hf_mtkd.audio_text.data import transcript_checks
from hf_mtkd.data import prepare_data
from hf_mtkd.audio_text.fit import TRANSFER_DIR, TRANSFER_DONE


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = write_text_corpus(tmp_path_factory.mktemp("text_corpus"))
    data_args = DataArguments(data_dir=str(root), max_duration_seconds=0.5, text_column_name="text")
    prepared = prepare_data(data_args, 16000, transcript_checks(data_args))
    return data_args, prepared.splits, prepared.label_names, prepared.languages


@pytest.fixture(scope="module")
def saved_teacher(tmp_path_factory):
    folder = tmp_path_factory.mktemp("teacher")
    processor = tiny_processor()
    tiny_model(processor, text_layers=4, seed=3).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def _config(output_dir, **kwargs) -> AudioTextDistillationConfig:
    base = dict(output_dir=str(output_dir), per_device_train_batch_size=8, per_device_eval_batch_size=16,
                learning_rate=1e-2, report_to=[], use_cpu=True, n_bootstrap=0, logging_steps=1, seed=0,
                save_total_limit=1, transfer_epochs=1, num_train_epochs=1)
    return AudioTextDistillationConfig(**{**base, **kwargs})


def _state(module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_two_phases_train_only_what_they_should(data, saved_teacher, tmp_path):
    data_args, splits, labels, languages = data
    start = AudioTextForSequenceClassification.from_pretrained(saved_teacher)
    fit = fit_audio_text(_config(tmp_path / "run"), ModelArguments(model_name_or_path=str(saved_teacher)), data_args,
                         splits, labels, audio_text_args=AudioTextModelArguments(), languages=languages)
    transfer = AudioTextForSequenceClassification.from_pretrained(tmp_path / "run" / TRANSFER_DIR)
    final = fit.model
    # Transfer phase: both encoders frozen, the fusion block and head trained.
    assert _same(_state(transfer.text_encoder), _state(start.text_encoder))
    assert _same(_state(transfer.audio_encoder), _state(start.audio_encoder))
    assert not torch.equal(transfer.fusion_linear.weight, start.fusion_linear.weight)
    # Fine-tuning phase: the text encoder trains too; the audio encoder never changes.
    assert not _same(_state(final.text_encoder), _state(start.text_encoder))
    assert _same(_state(final.audio_encoder), _state(start.audio_encoder))
    assert [p.name for p in fit.phases] == ["transfer", "finetune"]
    assert fit.phases[0].trainable_parameters < fit.phases[1].trainable_parameters
    assert fit.phases[0].best_model_checkpoint.startswith(str(tmp_path / "run" / TRANSFER_DIR))
    done = json.loads((tmp_path / "run" / TRANSFER_DIR / TRANSFER_DONE).read_text())
    assert done["best_metric"] == fit.phases[0].best_metric
    extras = fit.summary_extras()["audio_text"]
    assert extras["teacher"] is None and extras["kd"] is None and len(extras["phases"]) == 2

    # A restarted run reuses the finished transfer phase (its best model starts phase 2 again).
    again = fit_audio_text(
        _config(tmp_path / "run", num_train_epochs=1),
        ModelArguments(model_name_or_path=str(saved_teacher)),
        data_args,
        splits,
        labels,
        audio_text_args=AudioTextModelArguments(),
        languages=languages,
    )
    assert again.phases[0].reused and again.phases[0].best_metric == fit.phases[0].best_metric


def test_kd_student_online_and_cached_teacher_agree(data, saved_teacher, tmp_path):
    data_args, splits, labels, languages = data
    teacher_before = _state(AudioTextForSequenceClassification.from_pretrained(saved_teacher))
    logs = {}
    for mode, cache in (("online", False), ("cached", True)):
        config = _config(tmp_path / mode, transfer_epochs=0, num_train_epochs=1,
                         teacher_model_name_or_path=str(saved_teacher), use_teacher_output_cache=cache)
        fit = fit_audio_text(config, ModelArguments(model_name_or_path=str(saved_teacher)), data_args, splits, labels,
                             audio_text_args=AudioTextModelArguments(num_text_layers=2, layer_selection="uniform"),
                             languages=languages)
        assert fit.model.config.text_layers_kept == [2, 4]
        logs[mode] = [entry for entry in fit.trainer.state.log_history if "kd_kl" in entry]
        if not cache:
            assert _same(_state(fit.trainer.teacher), teacher_before)  # the teacher never trains
            assert not fit.trainer.teacher.training
        else:
            assert fit.trainer.teacher is None and "teacher_logits" in fit.splits["train"].column_names
    assert logs["online"] and len(logs["online"]) == len(logs["cached"])
    for online, cached in zip(logs["online"], logs["cached"]):
        for key in ("kd_kl", "kd_text_mse", "ce_loss", "loss"):
            assert online[key] == pytest.approx(cached[key], rel=1e-4, abs=1e-6), key
    # The KD terms are on: the loss is not (1 - alpha) CE alone.
    first = logs["online"][0]
    assert first["kd_text_mse"] > 0 and first["loss"] != pytest.approx(0.5 * first["ce_loss"])


def test_new_text_model_with_a_learnt_vocabulary(data, tmp_path):
    data_args, splits, labels, languages = data
    at_args = AudioTextModelArguments(
        modalities="text", text_encoder_type="bert", train_tokenizer_vocab_size=64,
        text_encoder_config_overrides={"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                                       "intermediate_size": 64, "max_position_embeddings": 64},
    )
    model_args = ModelArguments(model_type="hf_mtkd_audio_text", config_overrides={"fusion_num_attention_heads": 4})
    fit = fit_audio_text(_config(tmp_path / "text", transfer_epochs=0), model_args, data_args, splits, labels,
                         audio_text_args=at_args, languages=languages)
    assert fit.model.config.modalities == "text" and fit.model.audio_encoder is None
    vocab = fit.processor.tokenizer.get_vocab()
    assert "[CLS]" in vocab and len(vocab) <= 64
    assert [p.name for p in fit.phases] == ["finetune"]


def test_step_decay_schedule(data, saved_teacher, tmp_path):
    data_args, splits, labels, languages = data
    config = _config(tmp_path / "decay", transfer_epochs=0, num_train_epochs=3, lr_decay_every_epochs=1,
                     lr_decay_factor=0.1, warmup_steps=0, eval_strategy="no", save_strategy="no",
                     load_best_model_at_end=False)
    fit = fit_audio_text(config, ModelArguments(model_name_or_path=str(saved_teacher)), data_args, splits, labels,
                         audio_text_args=AudioTextModelArguments(), languages=languages)
    rates = {round(e["epoch"], 2): e["learning_rate"] for e in fit.trainer.state.log_history if "learning_rate" in e}
    # 16 training clips, batch 8: 2 steps per epoch; x0.1 at the start of each epoch after the first (StepLR).
    assert rates == pytest.approx({0.5: 1e-2, 1.0: 1e-2, 1.5: 1e-3, 2.0: 1e-3, 2.5: 1e-4, 3.0: 1e-4})


def test_config_checks():
    with pytest.raises(ValueError, match="needs teacher_model_name_or_path"):
        AudioTextDistillationConfig(output_dir="x", use_teacher_output_cache=True, report_to=[])
    with pytest.raises(ValueError, match="alpha must be in"):
        AudioTextDistillationConfig(output_dir="x", alpha=2.0, report_to=[])
    with pytest.raises(ValueError, match="not both"):
        AudioTextModelArguments(text_encoder="bert-base-uncased", text_encoder_type="bert")


def test_recipes_parse():
    from hf_mtkd.config_parser import load_recipe, parse_config
    from hf_mtkd.registry import get_method
    from hf_mtkd.multi_stage import stage_recipes

    DATACLASSES = get_method("audio_text").dataclass_types()

    recipes = Path(__file__).resolve().parents[1] / "recipes"
    flat = sorted((recipes / "iemocap").glob("audio_text_*.yaml"))
    assert len(flat) == 7
    for path in flat:
        _, _, config, at_args = parse_config(DATACLASSES, str(path), recipe=load_recipe(path))
        assert config.optim == "sgd" and config.learning_rate == 1e-6 and config.transfer_epochs == 50
        assert (config.teacher_model_name_or_path is not None) == path.stem.endswith("_kd")
    stages = stage_recipes(load_recipe(recipes / "demo" / "audio_text" / "pipeline.yaml"), "/tmp/out")
    for name, recipe in stages.items():
        types = DATACLASSES if recipe["method"] == "audio_text" else get_method(recipe["method"]).dataclass_types()
        parse_config(types, name, recipe=recipe)
    assert {"student_6", "student_6_kd", "student_4", "student_4_kd", "student_2", "student_2_kd"} <= set(stages)


def test_demo_pipeline_smoke(tmp_path):
    """recipes/demo/audio_text/pipeline.yaml end to end through the registry (one step per phase, tiny data)."""
    from testing_utils import LABELS  # noqa: F401  (the corpus' labels)
    from hf_mtkd.multi_stage import run_pipeline

    corpus = write_text_corpus(tmp_path / "corpus", speakers=4, clips_per_label=1)
    smoke = {"demo_corpus": "false", "demo_corpus_multimodal": "false", "data_dir": str(corpus), "max_steps": 1,
             "eval_strategy": "no", "save_strategy": "no", "load_best_model_at_end": "false", "n_bootstrap": 10,
             "per_device_train_batch_size": 4, "max_duration_seconds": 0.5, "report_to": "none"}
    flags = [token for key, value in smoke.items() for token in (f"--{key}", str(value))]
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "demo" / "audio_text" / "pipeline.yaml"
    summaries = run_pipeline(str(recipe), str(tmp_path / "out"), flags)
    assert summaries["student_2_kd"]["audio_text"]["text_layers_kept"] == [1, 2]
    assert summaries["student_2_kd"]["audio_text"]["kd"] == {"temperature": 2.0, "alpha": 0.5, "gamma": 1.0}
    assert summaries["student_2"]["audio_text"]["kd"] is None
    assert summaries["teacher_text"]["audio_text"]["modalities"] == "text"
    for init in ("student_4_pretrained_init", "student_4_kd_pretrained_init"):  # the authors' initialisation
        assert summaries[init]["audio_text"]["text_layers_kept"] == [1, 2, 3, 4]
    card = (tmp_path / "out" / "student_2_kd" / "README.md").read_text()
    assert 'pipeline("audio-text-classification"' in card and "Enhancing Speech Emotion Recognition" in card


@pytest.fixture(scope="module")
def reversed_teacher(saved_teacher, tmp_path_factory):
    """The saved teacher with its labels in reverse order and its classifier rows permuted to match: the same
    function of the input once its logits are put into the student's label order."""
    folder = tmp_path_factory.mktemp("reversed_teacher")
    model = AudioTextForSequenceClassification.from_pretrained(saved_teacher)
    names = [model.config.id2label[i] for i in range(model.config.num_labels)][::-1]
    order = torch.arange(model.config.num_labels).flip(0)
    with torch.no_grad():
        model.classifier.weight.copy_(model.classifier.weight[order])
        model.classifier.bias.copy_(model.classifier.bias[order])
    model.config.id2label = dict(enumerate(names))
    model.config.label2id = {name: i for i, name in enumerate(names)}
    model.save_pretrained(folder)
    AudioTextProcessor.from_pretrained(saved_teacher).save_pretrained(folder)
    return folder


def test_teacher_with_another_label_order_gives_the_same_kd(data, saved_teacher, reversed_teacher, tmp_path):
    # The student (built from the saved teacher) keeps the data's label order; a teacher listing the labels in
    # reverse must have its logits reordered, online and cached, to give the KD terms of the teacher in order.
    data_args, splits, labels, languages = data
    logs = {}
    for name, teacher, cache in (("in_order", saved_teacher, False), ("reversed", reversed_teacher, False),
                                 ("reversed_cached", reversed_teacher, True)):
        config = _config(tmp_path / name, transfer_epochs=0, num_train_epochs=1, gamma=0.0,
                         teacher_model_name_or_path=str(teacher), use_teacher_output_cache=cache)
        fit = fit_audio_text(config, ModelArguments(model_name_or_path=str(saved_teacher)), data_args, splits, labels,
                             audio_text_args=AudioTextModelArguments(), languages=languages)
        logs[name] = [
            entry[key] for entry in fit.trainer.state.log_history if "kd_kl" in entry for key in ("kd_kl", "ce_loss")
        ]
    assert len(logs["in_order"]) == 4 and logs["in_order"][2] > 1e-5  # (kd_kl, ce) x 2 steps; S starts as T
    for name in ("reversed", "reversed_cached"):
        assert logs[name] == pytest.approx(logs["in_order"], rel=1e-4, abs=1e-7), name
