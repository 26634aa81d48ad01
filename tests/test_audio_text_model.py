"""The audio + text classifier: masking invariance, save/load and pipeline round trips, students."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoProcessor, BertConfig, pipeline

from audio_text_fakes import tiny_model, tiny_processor
from testing_utils import LABELS
from hf_mtkd.audio_text import make_student, select_text_layers
from hf_mtkd.auto_classes import register_auto_models
from hf_mtkd.models.audio_text import AudioTextConfig, AudioTextForSequenceClassification, AudioTextProcessor


@pytest.fixture(scope="module")
def processor():
    return tiny_processor()


def _clips(rate=16000):
    rng = np.random.default_rng(1)
    return [
        rng.standard_normal(int(0.35 * rate)).astype(np.float32),
        rng.standard_normal(int(0.6 * rate)).astype(np.float32),
    ]


@pytest.mark.parametrize("pooling", ["first", "mean", "max"])
def test_clip_alone_equals_clip_in_padded_batch(processor, pooling):
    model = tiny_model(processor, pooling=pooling)
    short_clip, long_clip = _clips()
    texts = ["stop", "what a lovely day the bus is at nine"]  # the short clip also has the short text
    batch = processor(audio=[short_clip, long_clip], text=texts)
    assert batch["audio_attention_mask"][0].sum() < batch["audio_attention_mask"].shape[1]  # really padded
    assert batch["attention_mask"][0].sum() < batch["attention_mask"].shape[1]
    alone = processor(audio=short_clip, text=texts[0])
    with torch.no_grad():
        in_batch = model(**batch).logits[0]
        single = model(**alone).logits[0]
    assert torch.allclose(in_batch, single, atol=1e-5), (in_batch, single)


def test_padding_changes_logits_without_masks(processor):
    """The invariance above is the masks' doing: ignoring them changes the short clip's logits."""
    model = tiny_model(processor)
    short_clip, long_clip = _clips()
    batch = processor(audio=[short_clip, long_clip], text=["stop", "what a lovely day the bus is at nine"])
    with torch.no_grad():
        masked = model(**batch).logits[0]
        unmasked = model(input_ids=batch["input_ids"], input_values=batch["input_values"]).logits[0]
    assert not torch.allclose(masked, unmasked, atol=1e-4)


def test_save_load_round_trip_through_auto_classes(processor, tmp_path):
    register_auto_models(AudioTextConfig.model_type)
    model = tiny_model(processor)
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    assert {"config.json", "model.safetensors", "tokenizer.json", "processor_config.json"} <= {
        p.name for p in tmp_path.iterdir()
    }
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    loaded_processor = AutoProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded, AudioTextForSequenceClassification) and isinstance(loaded_processor, AudioTextProcessor)
    assert loaded.config.id2label == dict(enumerate(LABELS))
    assert loaded_processor.tokenizer.get_vocab() == processor.tokenizer.get_vocab()
    inputs = loaded_processor(audio=_clips(), text=["i miss you so", "stop it right now"])
    with torch.no_grad():
        assert torch.equal(model(**inputs).logits, loaded(**inputs).logits)


def test_pipeline_round_trip(processor, tmp_path):
    register_auto_models(AudioTextConfig.model_type)
    model = tiny_model(processor)
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    classifier = pipeline("audio-text-classification", model=str(tmp_path))
    clip = _clips()[1]
    result = classifier({"audio": clip, "text": "what a lovely day"})
    with torch.no_grad():
        expected = model(**processor(audio=clip, text="what a lovely day")).logits[0].softmax(-1)
    assert [r["label"] for r in result] == [LABELS[i] for i in expected.argsort(descending=True)]
    assert np.allclose([r["score"] for r in result], expected.sort(descending=True).values.numpy(), atol=1e-6)
    # A dict with a sampling rate is resampled; a list gives a list; the transcript is required.
    resampled = classifier([{"audio": {"raw": clip, "sampling_rate": 16000}, "text": "what a lovely day"}] * 2)
    assert len(resampled) == 2 and resampled[0][0]["label"] == result[0]["label"]
    with pytest.raises(ValueError, match="needs the transcript"):
        classifier({"audio": clip})


def test_single_modality_models(processor):
    text_only = AudioTextForSequenceClassification.from_encoders(
        BertConfig(vocab_size=len(processor.tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                   intermediate_size=64), label_names=LABELS, fusion_num_attention_heads=4)
    assert text_only.config.modalities == "text" and text_only.audio_encoder is None
    out = text_only(**processor(text=["stop it", "i miss you"]))
    assert out.logits.shape == (2, len(LABELS))
    with pytest.raises(ValueError, match="audio-only model needs pooling"):
        AudioTextConfig(audio_config={"model_type": "wav2vec2"}, modalities="audio")


def test_config_checks():
    with pytest.raises(ValueError, match="must be >= 1 and divide"):
        AudioTextConfig(text_config={"model_type": "bert", "hidden_size": 32, "num_attention_heads": 2},
                        audio_config={"model_type": "wav2vec2", "hidden_size": 32}, fusion_num_attention_heads=5)
    default = AudioTextConfig()  # bert-base + wav2vec2-base shapes; fusion width = the audio width
    assert (default.text_config.model_type, default.audio_config.model_type, default.fusion_hidden_size) == (
        "bert",
        "wav2vec2",
        768,
    )
    assert AudioTextConfig(modalities="text").audio_config is None


def test_frozen_audio_encoder_stays_in_eval_mode(processor):
    model = tiny_model(processor).train()
    assert not any(p.requires_grad for p in model.audio_encoder.parameters())
    assert not model.audio_encoder.training and model.text_encoder.training and model.fusion_attention.training
    model.set_encoders_trainable(text=False, audio=True)  # freeze_audio_encoder wins over audio=True
    model.train()
    assert not model.text_encoder.training and not any(p.requires_grad for p in model.audio_encoder.parameters())


# ------------------------------------------------------------------ students


@pytest.mark.parametrize(
    "num, selection, expected",
    [(6, "bottom", [1, 2, 3, 4, 5, 6]), (6, "uniform", [2, 4, 6, 8, 10, 12]), (4, "uniform", [3, 6, 9, 12]),
     (2, "uniform", [6, 12]), (2, "bottom", [1, 2]), (None, "[1, 6, 12]", [1, 6, 12]), (3, [2, 5, 9], [2, 5, 9])],
)
def test_select_text_layers(num, selection, expected):
    assert select_text_layers(12, num, selection) == expected


@pytest.mark.parametrize("num, selection, message", [
    (13, "bottom", "must be in 1..12"), (None, "uniform", "must be in 1..12"), (2, [3, 1], "strictly increasing"),
    (None, [0, 4], "outside the teacher's layers"), (3, [1, 2], "lists 2 layers"), (2, "top", "must be 'bottom'"),
])
def test_select_text_layers_errors(num, selection, message):
    with pytest.raises(ValueError, match=message):
        select_text_layers(12, num, selection)


@pytest.mark.parametrize("selection", ["bottom", "uniform", [2, 5, 6]])
def test_student_layers_equal_teacher_layers_at_initialisation(processor, selection):
    teacher = tiny_model(processor, text_layers=6)
    student = make_student(teacher, None if isinstance(selection, list) else 3, selection)
    kept = select_text_layers(6, 3, selection)
    assert student.config.text_config.num_hidden_layers == 3 and student.config.text_layers_kept == kept
    teacher_layers, student_layers = teacher.text_encoder.encoder.layer, student.text_encoder.encoder.layer
    for j, layer in enumerate(kept):
        for (name, s), (_, t) in zip(
            student_layers[j].state_dict().items(), teacher_layers[layer - 1].state_dict().items()
        ):
            assert torch.equal(s, t), (j, layer, name)
    # Everything else is the teacher's too (embeddings, audio encoder, fusion, head), and the audio branch is frozen.
    teacher_state = teacher.state_dict()
    for name, tensor in student.state_dict().items():
        if ".encoder.layer." not in name or name.startswith("audio_encoder."):
            assert torch.equal(tensor, teacher_state[name]), name
    assert student.num_parameters() < teacher.num_parameters()
    assert not any(p.requires_grad for p in student.audio_encoder.parameters())


def test_student_without_fusion_copy_and_bad_teacher(processor):
    teacher = tiny_model(processor, text_layers=6)
    student = make_student(teacher, 2, "bottom", copy_fusion=False)
    assert not torch.equal(student.classifier.weight, teacher.classifier.weight)
    assert torch.equal(
        student.text_encoder.embeddings.word_embeddings.weight, teacher.text_encoder.embeddings.word_embeddings.weight
    )


def test_cost_benchmark_on_saved_models(processor, tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import audio_text_cost

    teacher = tiny_model(processor, text_layers=6)
    student = make_student(teacher, 2, "bottom")
    teacher.save_pretrained(tmp_path / "teacher")
    student.save_pretrained(tmp_path / "student")
    report = audio_text_cost.main([
        "--output", str(tmp_path / "cost.json"), "--repeats", "2", "--warmup", "1", "--clip-seconds", "0.3",
        "--text-tokens", "6", "--models", f"teacher={tmp_path / 'teacher'}", f"student_2={tmp_path / 'student'}",
    ])
    rows = report["models"]
    assert rows["teacher"]["params_ratio"] == 1.0 and rows["teacher"]["time_ratio"] == 1.0
    assert rows["student_2"]["params_ratio"] == pytest.approx(student.num_parameters() / teacher.num_parameters())
    assert rows["student_2"]["text_layers"] == 2 and rows["student_2"]["paper_params_ratio"] == pytest.approx(
        87.03 / 157.91
    )
    assert (tmp_path / "cost.json").exists() and "| student_2 | 2 |" in audio_text_cost.markdown(report)


@pytest.mark.slow  # a fresh interpreter imports torch and transformers: 10-30 s on a busy 2-core machine
def test_import_hf_mtkd_is_enough_for_the_pipeline_and_stays_light(processor, tmp_path):
    import json
    import subprocess
    import sys
    import textwrap

    tiny_model(processor).save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    script = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        import hf_mtkd
        # AutoProcessor waits for the first audio_text config
        light = "transformers.processing_utils" not in sys.modules
        from transformers import pipeline
        classifier = pipeline("audio-text-classification", model={str(tmp_path)!r})
        result = classifier({{"audio": np.zeros(8000, np.float32), "text": "stop"}})
        print(json.dumps({{"light": light, "labels": [r["label"] for r in result]}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    printed = json.loads(out.stdout.strip().splitlines()[-1])
    assert printed["light"] and sorted(printed["labels"]) == sorted(LABELS)


def test_student_from_the_pretrained_text_encoder_as_the_authors_built_it(processor, tmp_path):
    # Issue 23, item 8: DistilSER builds a student from the bottom k layers of the *pretrained* text encoder, with a
    # fresh fusion block and head; `student_init: teacher` copies the fine-tuned teacher's instead.
    from transformers import BertModel

    teacher = tiny_model(processor, text_layers=6)
    torch.manual_seed(7)
    pretrained = BertModel(BertConfig(**teacher.config.text_config.to_dict()))
    student = make_student(teacher, 2, "bottom", init="pretrained", pretrained_text_encoder=pretrained)
    for j in range(2):
        for (name, s), (_, p) in zip(student.text_encoder.encoder.layer[j].state_dict().items(),
                                     pretrained.encoder.layer[j].state_dict().items()):
            assert torch.equal(s, p), (j, name)
    assert torch.equal(
        student.text_encoder.embeddings.word_embeddings.weight, pretrained.embeddings.word_embeddings.weight
    )
    assert not torch.equal(student.text_encoder.embeddings.word_embeddings.weight,
                           teacher.text_encoder.embeddings.word_embeddings.weight)
    assert not torch.equal(student.classifier.weight, teacher.classifier.weight)  # fresh head
    fusion = [n for n in student.state_dict() if not n.startswith(("text_encoder.", "audio_encoder."))]
    teacher_state = teacher.state_dict()
    assert fusion and not any(
        torch.equal(student.state_dict()[n], teacher_state[n])
        for n in fusion
        if n.endswith("weight") and student.state_dict()[n].dim() > 1
    )
    for name, tensor in student.audio_encoder.state_dict().items():  # the frozen audio encoder is the teacher's
        assert torch.equal(tensor, teacher.audio_encoder.state_dict()[name])
    with pytest.raises(ValueError, match="pretrained text encoder"):
        make_student(teacher, 2, "bottom", init="pretrained")
    with pytest.raises(ValueError, match="student_init"):
        make_student(teacher, 2, "bottom", init="random")


def test_a_student_recipe_with_student_init_pretrained_reads_the_text_encoder(processor, tmp_path):
    from transformers import BertModel

    from hf_mtkd.arguments import ModelArguments
    from hf_mtkd.audio_text.build import build_audio_text_model
    from hf_mtkd.audio_text.config import AudioTextModelArguments

    teacher = tiny_model(processor, text_layers=4)
    teacher.save_pretrained(tmp_path / "teacher")
    processor.save_pretrained(tmp_path / "teacher")
    torch.manual_seed(3)
    pretrained = BertModel(BertConfig(**teacher.config.text_config.to_dict()))
    pretrained.save_pretrained(tmp_path / "bert")
    model_args = ModelArguments(model_name_or_path=str(tmp_path / "teacher"))
    at_args = AudioTextModelArguments(
        num_text_layers=2, student_init="pretrained", text_encoder=str(tmp_path / "bert")
    )
    student, _ = build_audio_text_model(model_args, at_args, list(LABELS))
    assert torch.equal(
        student.text_encoder.encoder.layer[1].output.dense.weight, pretrained.encoder.layer[1].output.dense.weight
    )
    with pytest.raises(ValueError, match="set text_encoder"):  # with the arguments, before any data is read
        AudioTextModelArguments(num_text_layers=2, student_init="pretrained")
    with pytest.raises(ValueError, match="student_init"):
        AudioTextModelArguments(student_init="fresh")
