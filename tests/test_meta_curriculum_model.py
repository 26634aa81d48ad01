"""The inverted-transformer student and the exported waveform model: shapes, save/load round trips, Auto classes
(rows of hf_mtkd.auto_classes.AUTO_MODELS, registered by `import hf_mtkd`), pipeline(), and the export's logits
against the student's on cached features."""

import os

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import AutoModelForAudioClassification, pipeline

from hf_mtkd.models.inverted_transformer import (
    InvertedTransformerConfig,
    WaveformStudentConfig,
    WaveformStudentForAudioClassification,
)
from hf_mtkd.meta_curriculum.features import INPUT_FEATURES, add_upstream_features
from hf_mtkd.models.inverted_transformer.upstream import load_upstream
from meta_curriculum_helpers import LABELS, RATE, TINY_STUDENT, save_tiny_hubert, tiny_student, tones, waveform_dataset


def test_student_round_trip_through_auto_classes(tmp_path):
    student = tiny_student(frames=20, channels=6).eval()
    features = torch.randn(3, 20, 6)
    student.save_pretrained(tmp_path)
    assert (tmp_path / "config.json").exists() and (tmp_path / "model.safetensors").exists()
    loaded = AutoModelForAudioClassification.from_pretrained(tmp_path).eval()
    assert type(loaded) is type(student) and loaded.config.id2label == dict(enumerate(LABELS))
    torch.testing.assert_close(loaded(features).logits, student(features).logits)
    for name, tensor in student.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name


def test_student_weighted_layer_sum_learns_and_checks_shapes():
    student = tiny_student(frames=10, channels=6, layers=3)
    out = student(torch.randn(2, 3, 10, 6), labels=torch.tensor([0, 1]))
    out.loss.backward()
    assert student.layer_weights.grad is not None and student.layer_weights.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"\(batch, 3, 10, 6\)"):
        student(torch.randn(2, 10, 6))


def test_student_tokens_are_channels():
    """Permuting the feature channels permutes the tokens only: mean pooling makes the output invariant
    (there is no positional information across channels, as in iTransformer)."""
    student = tiny_student(frames=10, channels=6).eval()
    features = torch.randn(2, 10, 6)
    permuted = features[:, :, torch.randperm(6)]
    torch.testing.assert_close(student(permuted).logits, student(features).logits, atol=1e-5, rtol=1e-5)


def test_config_checks():
    with pytest.raises(ValueError, match="must divide d_model"):
        InvertedTransformerConfig(d_model=10, num_attention_heads=4)
    with pytest.raises(ValueError, match="hidden_act"):
        InvertedTransformerConfig(hidden_act="tanh")
    with pytest.raises(ValueError, match="filterbank"):
        WaveformStudentConfig(filterbank="cqt")
    student = InvertedTransformerConfig(**TINY_STUDENT, num_frames=20, num_channels=7)
    with pytest.raises(ValueError, match="upstream makes"):
        WaveformStudentConfig(n_mels=8, max_frames=20, student_config=student.to_dict())


def _export_matches_cache(tmp_path, upstream_path, layer, layers_in_student):
    upstream, config, fe = load_upstream(upstream_path, layer, filterbank_kwargs={"n_mels": 12}, max_frames=30,
                                         max_input_samples=int(0.5 * RATE))
    dataset = add_upstream_features(waveform_dataset(tmp_path / "data"), upstream, config, fe)
    student = tiny_student(frames=30, channels=config.feature_width, layers=layers_in_student).eval()
    cached = torch.as_tensor(np.asarray(dataset[INPUT_FEATURES]))
    expected = student(cached).logits
    model = WaveformStudentForAudioClassification.from_parts(upstream, config, student)
    waveforms = [np.asarray(w) for w in dataset["waveform"]]
    for i, waveform in enumerate(waveforms):  # one clip at a time, as pipeline() calls it
        inputs = fe(waveform, sampling_rate=RATE, return_tensors="pt")
        torch.testing.assert_close(model(**inputs).logits[0], expected[i], atol=1e-5, rtol=1e-5)
    if fe.return_attention_mask:  # a padded batch with a mask gives each clip's own logits
        inputs = fe(waveforms, sampling_rate=RATE, return_tensors="pt", padding=True, return_attention_mask=True)
        torch.testing.assert_close(model(**inputs).logits, expected, atol=1e-5, rtol=1e-5)

    model.save_pretrained(tmp_path / "export")
    fe.save_pretrained(tmp_path / "export")
    loaded = AutoModelForAudioClassification.from_pretrained(tmp_path / "export").eval()
    assert isinstance(loaded, WaveformStudentForAudioClassification)
    inputs = fe(waveforms[0], sampling_rate=RATE, return_tensors="pt")
    torch.testing.assert_close(loaded(**inputs).logits[0], expected[0], atol=1e-5, rtol=1e-5)
    return tmp_path / "export", expected, waveforms


def test_export_with_filterbank_equals_student_on_cached_features_and_pipeline_loads_it(tmp_path):
    export_dir, expected, waveforms = _export_matches_cache(tmp_path, None, None, 1)
    path = tmp_path / "clip.wav"
    sf.write(path, waveforms[0], RATE)
    classifier = pipeline("audio-classification", model=str(export_dir), top_k=None)
    scores = {row["label"]: row["score"] for row in classifier(str(path))}
    assert set(scores) == set(LABELS)
    probabilities = torch.softmax(expected[0], -1)
    for i, label in enumerate(LABELS):
        assert scores[label] == pytest.approx(probabilities[i].item(), abs=1e-4)


@pytest.mark.parametrize("layer, layers_in_student", [(1, 1), (None, 3)], ids=["layer_1", "weighted"])
def test_export_with_transformers_upstream_equals_student_on_cached_features(tmp_path, layer, layers_in_student):
    save_tiny_hubert(tmp_path / "hubert")
    _export_matches_cache(tmp_path, str(tmp_path / "hubert"), layer, layers_in_student)
    assert os.path.getsize(tmp_path / "export" / "model.safetensors") > 0


def test_export_crops_long_inputs_like_the_training_clips(tmp_path):
    upstream, config, fe = load_upstream(None, None, filterbank_kwargs={"n_mels": 12}, max_frames=80,
                                         max_input_samples=4000)
    student = tiny_student(frames=80, channels=12).eval()
    model = WaveformStudentForAudioClassification.from_parts(upstream, config, student)
    long = np.concatenate([tones(1)[0], np.ones(8000, dtype=np.float32)])
    short = long[:4000]
    logits = [model(**fe(w, sampling_rate=RATE, return_tensors="pt")).logits for w in (long, short)]
    torch.testing.assert_close(logits[0], logits[1])


def test_the_non_inverted_student_takes_one_token_per_time_step(tmp_path):
    # Issue 23, item 7 (Table 4): the same transformer over time steps instead of channels.
    from hf_mtkd.models.inverted_transformer import (
        InvertedTransformerConfig,
        InvertedTransformerForFeatureClassification,
    )

    common = dict(num_frames=10, num_channels=6, d_model=8, num_hidden_layers=1, num_attention_heads=2,
                  intermediate_size=16, classifier_hidden_size=8, contrastive_dim=4, num_labels=4)
    inverted = InvertedTransformerForFeatureClassification(InvertedTransformerConfig(**common))
    over_time = InvertedTransformerForFeatureClassification(InvertedTransformerConfig(**common, token_axis="time"))
    assert tuple(inverted.embedding.weight.shape) == (8, 10) and tuple(over_time.embedding.weight.shape) == (8, 6)
    seen = []
    over_time.encoder.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape)))
    assert over_time(torch.randn(3, 10, 6)).logits.shape == (3, 4) and seen == [(3, 10, 8)]
    over_time.save_pretrained(tmp_path)
    assert InvertedTransformerForFeatureClassification.from_pretrained(tmp_path).config.token_axis == "time"
    with pytest.raises(ValueError, match="token_axis"):
        InvertedTransformerConfig(**common, token_axis="frames")
