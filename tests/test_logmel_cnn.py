"""The compact log-mel CNN: features, mask invariance, SpecAugment, save/load, pipeline, training as a student."""

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification

import hf_mtkd  # noqa: F401  (registers the Auto classes)
from testing_utils import LABELS, assert_pipeline_scores_are_the_softmax, save_tiny_classifier, tiny_recipe
from hf_mtkd.registry import get_method
from hf_mtkd.models import LogMelCNNConfig, LogMelCNNForAudioClassification, LogMelFeatureExtractor
from hf_mtkd.models.logmel_cnn.modeling_logmel_cnn import MaskedBatchNorm1d, SpecAugment
from hf_mtkd.training.run import run

RATE = 16000
TINY = {"num_mel_bins": 16, "conv_channels": [8, 8, 16], "conv_kernels": [5, 3, 3], "conv_strides": [2, 1, 2],
        "classifier_hidden_size": 8}


def tiny_model(seed=0, **overrides) -> LogMelCNNForAudioClassification:
    torch.manual_seed(seed)
    config = LogMelCNNConfig(**{**TINY, **overrides}, num_labels=4, id2label=dict(enumerate(LABELS)))
    return LogMelCNNForAudioClassification(config).eval()


def clips(lengths, seed=0):
    rng = np.random.default_rng(seed)
    t = [np.arange(n) / RATE for n in lengths]
    return [(0.3 * np.sin(2 * np.pi * (150 + 50 * i) * x) + 0.02 * rng.standard_normal(x.size)).astype(np.float32)
            for i, x in enumerate(t)]


def test_features_shape_mask_and_per_utterance_normalisation():
    fe = LogMelFeatureExtractor(num_mel_bins=16)
    waves = clips([16000, 8000, 100])
    batch = fe(waves, sampling_rate=RATE, return_tensors="pt")
    frames = [fe.num_frames(w.size) for w in waves]
    assert frames == [1 + (16000 - 400) // 160, 1 + (8000 - 400) // 160, 1]  # a clip under one frame: one frame
    assert batch["input_values"].shape == (3, frames[0], 16)
    assert batch["attention_mask"].sum(dim=1).tolist() == frames
    second = batch["input_values"][1, : frames[1]]
    # "utterance": one mean and one deviation per clip, so the bands keep their differences.
    assert float(second.mean()) == pytest.approx(0.0, abs=1e-4)
    assert float(second.std(unbiased=False)) == pytest.approx(1.0, abs=1e-3)
    assert float(second.mean(dim=0).std()) > 0.3
    assert (batch["input_values"][1, frames[1]:] == 0).all()
    per_band = LogMelFeatureExtractor(num_mel_bins=16, normalization="utterance_per_band")
    second = per_band(waves[1], sampling_rate=RATE, return_tensors="pt")["input_values"][0]
    np.testing.assert_allclose(second.mean(dim=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(second.std(dim=0, unbiased=False), 1.0, atol=0.05)  # eps 1e-5 under the variance
    raw = LogMelFeatureExtractor(num_mel_bins=16, normalization="none")(waves[1], sampling_rate=RATE)["input_values"][
        0
    ]
    np.testing.assert_allclose(second, (raw - raw.mean(0)) / np.sqrt(raw.var(0) + 1e-5), atol=1e-4)
    # Gain does not matter after per-utterance normalisation (the log turns it into an offset).
    for extractor in (fe, per_band):
        quiet = extractor(waves[0], sampling_rate=RATE, return_tensors="pt")["input_values"][0]
        louder = extractor(waves[0] * 4.0, sampling_rate=RATE, return_tensors="pt")["input_values"][0]
        np.testing.assert_allclose(louder, quiet, atol=1e-3)
    with pytest.raises(ValueError, match="expects audio at 16000 Hz, got 8000"):
        fe(waves[0], sampling_rate=8000)
    with pytest.raises(ValueError, match="normalization must be one of"):
        LogMelFeatureExtractor(normalization="global")
    with pytest.raises(ValueError, match="mono"):
        fe(np.zeros((2, 2, 100), dtype=np.float32), sampling_rate=RATE)


def test_prediction_alone_equals_prediction_in_a_padded_batch():
    model = tiny_model()
    fe = LogMelFeatureExtractor(num_mel_bins=16)
    waves = clips([24000, 9000, 13001, 2000])
    with torch.no_grad():
        together = model(**fe(waves, sampling_rate=RATE, return_tensors="pt")).logits
        for i, wave in enumerate(waves):
            alone = model(**fe(wave, sampling_rate=RATE, return_tensors="pt")).logits[0]
            torch.testing.assert_close(alone, together[i], atol=1e-5, rtol=1e-5)
    # Without the mask the padded clips would change: the guard is not vacuous.
    batch = fe(waves, sampling_rate=RATE, return_tensors="pt")
    with torch.no_grad():
        unmasked = model(input_values=batch["input_values"]).logits
    assert not torch.allclose(unmasked[1], together[1], atol=1e-3)


def test_masked_batch_norm_takes_statistics_over_real_frames_only():
    norm = MaskedBatchNorm1d(3, momentum=1.0).train()
    hidden = torch.randn(2, 3, 7)
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3], dtype=torch.bool)
    padded = hidden.clone()
    padded[1, :, 4:] = 100.0  # garbage in the padding
    out = norm(padded, mask)
    real = torch.cat([hidden[0], hidden[1, :, :4]], dim=1)  # (channels, 11 real frames)
    mean, var = real.mean(dim=1), real.var(dim=1, unbiased=False)
    expected = (hidden[1, :, :4] - mean[:, None]) / torch.sqrt(var[:, None] + norm.eps)
    torch.testing.assert_close(out[1, :, :4], expected, atol=1e-5, rtol=1e-5)
    assert (out[1, :, 4:] == 0).all()
    torch.testing.assert_close(norm.running_mean, mean, atol=1e-5, rtol=1e-5)  # momentum 1: the batch's own mean


def test_spec_augment_masks_in_training_only():
    augment = SpecAugment(LogMelCNNConfig(**TINY, spec_augment_freq_width=4, spec_augment_time_width=10))
    features = torch.randn(4, 16, 50) + 10.0  # no zeros of its own
    torch.manual_seed(0)
    masked = augment.train()(features)
    assert (masked == 0).any() and not torch.equal((masked == 0)[0], (masked == 0)[1])  # masks drawn per clip
    assert torch.equal(augment.eval()(features), features)
    off = SpecAugment(LogMelCNNConfig(**TINY, spec_augment_freq_masks=0, spec_augment_time_masks=0)).train()
    assert torch.equal(off(features), features)


def test_save_load_round_trip_and_pipeline(tmp_path):
    model, fe = tiny_model(), LogMelFeatureExtractor(num_mel_bins=16)
    model.config.train_window_seconds = 1.5
    model.save_pretrained(tmp_path)
    fe.save_pretrained(tmp_path)
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= {p.name for p in tmp_path.iterdir()}
    loaded = AutoModelForAudioClassification.from_pretrained(tmp_path).eval()
    loaded_fe = AutoFeatureExtractor.from_pretrained(tmp_path)
    assert type(loaded) is LogMelCNNForAudioClassification and type(loaded_fe) is LogMelFeatureExtractor
    assert loaded.config.train_window_seconds == 1.5 and loaded.config.conv_channels == TINY["conv_channels"]
    assert loaded_fe.to_dict() == fe.to_dict()
    waves = clips([12000, 7000])
    with torch.no_grad():
        before = model(**fe(waves, sampling_rate=RATE, return_tensors="pt")).logits
        after = loaded(**loaded_fe(waves, sampling_rate=RATE, return_tensors="pt")).logits
    torch.testing.assert_close(before, after, atol=0, rtol=0)

    assert_pipeline_scores_are_the_softmax(tmp_path, waves[1], before[1])


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="one length"):
        LogMelCNNConfig(conv_channels=[8, 8], conv_kernels=[3], conv_strides=[1, 1])
    with pytest.raises(ValueError, match="conv_kernels must be odd"):
        LogMelCNNConfig(conv_channels=[8], conv_kernels=[4], conv_strides=[1])
    with pytest.raises(ValueError, match="Unknown pooling 'max'"):
        LogMelCNNConfig(pooling="max")
    with pytest.raises(ValueError, match="spec_augment_freq_width \\(80\\) exceeds num_mel_bins \\(64\\)"):
        LogMelCNNConfig(spec_augment_freq_width=80)
    with pytest.raises(ValueError, match="input_values must be \\(batch, frames, 16\\)"):
        tiny_model()(input_values=torch.zeros(1, 16000))


@pytest.mark.parametrize("method", ["finetune", "mtkd"])
def test_trains_as_a_student_and_parameters_change(method, tone_corpus, tmp_path):
    initial = tiny_model(seed=1)
    initial.save_pretrained(tmp_path / "init")
    LogMelFeatureExtractor(num_mel_bins=16).save_pretrained(tmp_path / "init")
    extra = {}
    if method == "mtkd":  # a wav2vec2 teacher keeps its own raw-waveform feature extractor
        save_tiny_classifier(tmp_path / "teacher", LABELS)
        extra = {"teachers": [{"model": str(tmp_path / "teacher"), "language": "en"}], "kd_lambda": 0.5}
    out = tmp_path / method
    run(get_method(method), recipe=tiny_recipe(
        tone_corpus, out, method=method, model_type=None, model_name_or_path=str(tmp_path / "init"),
        freeze_feature_encoder=False, max_steps=3, **extra))
    trained = AutoModelForAudioClassification.from_pretrained(out)
    assert type(trained) is LogMelCNNForAudioClassification
    assert type(AutoFeatureExtractor.from_pretrained(out)) is LogMelFeatureExtractor
    before = dict(initial.named_parameters())
    changed = [name for name, p in trained.named_parameters() if not torch.equal(p, before[name])]
    assert any(n.startswith("logmel_cnn.blocks.0.") for n in changed) and any(n.startswith("head.") for n in changed)


def test_fresh_student_from_model_type(tone_corpus, tmp_path):
    # model_type + config_overrides: the default feature extractor follows the config's num_mel_bins.
    out = tmp_path / "fresh"
    run(get_method("finetune"), recipe=tiny_recipe(
        tone_corpus, out, model_type="hf_mtkd_logmel_cnn", config_overrides=TINY, freeze_feature_encoder=False,
        max_steps=1))
    assert AutoFeatureExtractor.from_pretrained(out).num_mel_bins == 16
    assert AutoConfig.from_pretrained(out).conv_channels == TINY["conv_channels"]
