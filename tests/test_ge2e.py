"""The GE2E encoder (hf_mtkd/models/ge2e): equal to Resemblyzer's embeddings on real speech, weights in
model.safetensors (reload without resemblyzer), Auto classes and pipeline, the encoder's learning rate; then the
encoder in each role (finetune student, MTKD and meta-teacher teacher, classic floor) on tiny recipe runs."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import AutoFeatureExtractor, AutoModelForAudioClassification, Wav2Vec2FeatureExtractor

import hf_mtkd  # noqa: F401  (registers the Auto classes)
from hf_mtkd.classic_baseline import clip_features, load_classic_baseline
from hf_mtkd.config_parser import load_recipe
from hf_mtkd.registry import get_method
from hf_mtkd.models import GE2EConfig, GE2EFeatureExtractor, GE2EForAudioClassification
from hf_mtkd.models.ge2e.feature_extraction_ge2e import normalize_volume
from hf_mtkd.models.ge2e.modeling_ge2e import load_resemblyzer_state, window_statistics
from hf_mtkd.distillation.teachers import TeacherSpec, load_teacher, teacher_logits_for_batch
from hf_mtkd.training.args import SERTrainingArguments
from hf_mtkd.training.run import run
from hf_mtkd.training.trainer import SERTrainer
from testing_utils import LABELS, assert_pipeline_scores_are_the_softmax, SHARED_DATA, tiny_recipe, write_tone_corpus

ROOT = Path(__file__).resolve().parents[1]

RATE = 16000
#: A tiny encoder of another shape: random init, no resemblyzer needed.
TINY = {"num_mel_bins": 40, "hidden_size": 16, "num_hidden_layers": 2, "embedding_size": 8,
        "pretrained_encoder": None, "classifier_hidden_size": 8}
#: Real clips of several lengths (one to several partial windows; the last window kept or dropped).
# The fourth is at -38 dBFS: the -30 dBFS volume normalisation raises it (the others are louder and left as they are).
REAL_CLIPS = ["emodb/wav/03a01Fa.flac", "emodb/wav/16b10Tb.flac",
              "ravdess/Audio_Speech_Actors_01-24/Actor_01/03-01-05-02-01-01-01.flac",
              "ravdess/Audio_Speech_Actors_01-24/Actor_03/03-01-06-01-02-02-03.flac",
              "ravdess/Audio_Speech_Actors_01-24/Actor_03/03-01-05-02-02-02-03.flac"]


def tiny_model(seed=0, **overrides) -> GE2EForAudioClassification:
    torch.manual_seed(seed)
    config = GE2EConfig(**{**TINY, **overrides}, num_labels=4, id2label=dict(enumerate(LABELS)))
    return GE2EForAudioClassification(config).eval()


def tones(lengths, seed=0):
    rng = np.random.default_rng(seed)
    return [(0.1 * np.sin(2 * np.pi * (150 + 50 * i) * np.arange(n) / RATE) + 0.01 * rng.standard_normal(n))
            .astype(np.float32) for i, n in enumerate(lengths)]


def real_clips():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"The shared real-speech folder {SHARED_DATA} is absent (see its README).")
    clips = []
    for name in REAL_CLIPS:
        wave, rate = sf.read(SHARED_DATA / name, dtype="float32")
        assert rate == RATE
        clips.append(wave)
    return clips + [clips[0][: RATE]]  # and one shorter than a window


def needs_resemblyzer():
    pytest.importorskip("resemblyzer", reason="the GE2E weights ship in the resemblyzer wheel (hf_mtkd[ge2e])")


def pretrained_model(**overrides) -> GE2EForAudioClassification:
    needs_resemblyzer()
    torch.manual_seed(0)
    return GE2EForAudioClassification.from_resemblyzer(id2label=dict(enumerate(LABELS)), **overrides).eval()


def test_embeddings_equal_resemblyzers_on_real_speech():
    model = pretrained_model()
    from resemblyzer import VoiceEncoder
    from resemblyzer.audio import normalize_volume as reference_normalize_volume

    reference = VoiceEncoder("cpu", verbose=False)
    fe = GE2EFeatureExtractor()
    clips = real_clips()
    expected, expected_partials = [], []
    for wave in clips:
        prepared = reference_normalize_volume(wave, -30, increase_only=True)
        embedding, partials, _ = reference.embed_utterance(prepared, return_partials=True)
        expected.append(embedding)
        expected_partials.append(partials)
    assert sorted({len(p) for p in expected_partials}) == [1, 2, 3, 4, 5]  # several window counts, padded in one batch
    inputs = fe(clips, sampling_rate=RATE, return_tensors="pt")
    with torch.no_grad():
        utterance = model.ge2e.utterance_embeddings(**inputs).numpy()
        windows, mask = model.ge2e(**inputs)
    difference = np.abs(utterance - np.stack(expected)).max()
    print(f"max |embedding - resemblyzer| = {difference:.2e}")
    assert difference < 1e-4
    for i, partials in enumerate(expected_partials):
        assert int(mask[i].sum()) == len(partials)
        np.testing.assert_allclose(windows[i, : len(partials)].numpy(), partials, atol=1e-4, rtol=0)
    # The classifier's input: mean and standard deviation (the shared pooling's sqrt(var + 1e-5)) of the windows.
    for i, partials in enumerate(expected_partials):
        partials = torch.from_numpy(partials)
        stats = torch.cat([partials.mean(0), torch.sqrt(partials.var(0, unbiased=False) + 1e-5)])
        torch.testing.assert_close(window_statistics(windows, mask)[i], stats, atol=1e-4, rtol=0)


def test_partial_windows_follow_the_wheels_rule():
    fe = GE2EFeatureExtractor()
    assert fe.frame_step == 77 and fe.n_fft == 400 and fe.hop_length == 160
    assert fe.partial_starts(8000) == [0]  # shorter than a window: one, zero-padded
    # 3 s: frames 0..300; windows at 0, 77, 154 (coverage of the last: (48000 - 154*160) / 25600 = 0.91)
    assert fe.partial_starts(48000) == [0, 77, 154]
    # 2.2 s: the window at 77 would cover (35200 - 12320) / 25600 = 0.89 -> kept; at 1.9 s 0.71 -> dropped
    assert fe.partial_starts(35200) == [0, 77] and fe.partial_starts(30400) == [0]


def test_volume_is_raised_to_minus_30_dbfs_never_lowered():
    fe = GE2EFeatureExtractor()
    quiet, loud = tones([16000])[0] * 0.01, tones([16000])[0] * 5
    level = lambda w: 20 * np.log10(np.sqrt(np.mean((w * 32767.0) ** 2)) / 32767.0)  # noqa: E731
    assert level(normalize_volume(quiet, -30.0)) == pytest.approx(-30.0, abs=1e-6)
    np.testing.assert_array_equal(normalize_volume(loud, -30.0), loud.astype(np.float64))
    np.testing.assert_array_equal(normalize_volume(np.zeros(100), -30.0), np.zeros(100))
    # A clip and the same clip 10x quieter give the same windows (both raised to -30 dBFS).
    np.testing.assert_allclose(fe.partials(quiet), fe.partials(quiet * 0.1), rtol=1e-4, atol=1e-9)


def test_prediction_alone_equals_prediction_in_a_padded_batch():
    model, fe = tiny_model(), GE2EFeatureExtractor()
    waves = tones([40000, 9000, 60000])
    with torch.no_grad():
        batch = model(**fe(waves, sampling_rate=RATE, return_tensors="pt")).logits
        alone = torch.cat([model(**fe(w, sampling_rate=RATE, return_tensors="pt")).logits for w in waves])
    torch.testing.assert_close(batch, alone, atol=1e-5, rtol=0)


def test_pretrained_save_reload_without_resemblyzer_and_pipeline(tmp_path, monkeypatch):
    model, fe = pretrained_model(), GE2EFeatureExtractor()
    model.save_pretrained(tmp_path)
    fe.save_pretrained(tmp_path)
    waves = tones([30000, 12000])
    with torch.no_grad():
        before = model(**fe(waves, sampling_rate=RATE, return_tensors="pt")).logits

    monkeypatch.setitem(sys.modules, "resemblyzer", None)  # `import resemblyzer` now fails
    with pytest.raises(ImportError, match=r"hf_mtkd\[ge2e\]"):
        GE2EForAudioClassification(GE2EConfig(num_labels=4))  # building one from a config needs the wheel
    loaded = AutoModelForAudioClassification.from_pretrained(tmp_path).eval()
    loaded_fe = AutoFeatureExtractor.from_pretrained(tmp_path)
    assert type(loaded) is GE2EForAudioClassification and type(loaded_fe) is GE2EFeatureExtractor
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    with torch.no_grad():
        after = loaded(**loaded_fe(waves, sampling_rate=RATE, return_tensors="pt")).logits
    torch.testing.assert_close(before, after, atol=0, rtol=0)

    assert_pipeline_scores_are_the_softmax(tmp_path, waves[1], before[1])


def test_tiny_round_trip_keeps_the_trained_encoder(tmp_path):
    model = tiny_model(freeze_encoder=False)
    with torch.no_grad():
        model.ge2e.projection.bias.add_(0.5)  # as training would: the saved encoder, not a fresh init, must return
    model.save_pretrained(tmp_path)
    loaded = AutoModelForAudioClassification.from_pretrained(tmp_path)
    assert torch.equal(loaded.ge2e.projection.bias, model.ge2e.projection.bias)
    assert all(p.requires_grad for p in loaded.ge2e.parameters())
    frozen = tiny_model(freeze_encoder=True)
    frozen.save_pretrained(tmp_path / "frozen")
    loaded = AutoModelForAudioClassification.from_pretrained(tmp_path / "frozen")  # still frozen once loaded
    assert not any(p.requires_grad for p in loaded.ge2e.parameters())
    assert all(p.requires_grad for p in loaded.classifier.parameters())


def test_frozen_encoder_and_its_own_learning_rate(tmp_path):
    frozen = tiny_model()
    assert not any(p.requires_grad for p in frozen.ge2e.parameters())
    assert all(p.requires_grad for p in frozen.classifier.parameters())
    args = SERTrainingArguments(output_dir=str(tmp_path), learning_rate=1e-3, weight_decay=0.01, report_to="none",
                               eval_strategy="no", save_strategy="no", load_best_model_at_end=False)
    model = tiny_model(freeze_encoder=False, encoder_learning_rate=1e-5)
    optimizer = SERTrainer(model=model, args=args).create_optimizer()
    rates = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    assert len(rates) == sum(1 for _ in model.parameters())  # every parameter once
    assert {rates[id(p)] for p in model.ge2e.parameters()} == {1e-5}
    assert {rates[id(p)] for p in model.classifier.parameters()} == {1e-3}
    # Weight decay stays the Trainer's choice (none on biases and norms) in the encoder's groups too.
    decay = {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
    assert decay[id(model.ge2e.lstm.weight_ih_l0)] == 0.01 and decay[id(model.ge2e.projection.bias)] == 0.0


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="pretrained_encoder 'resemblyzer' has the shape"):
        GE2EConfig(hidden_size=16)
    with pytest.raises(ValueError, match="pretrained_encoder must be one of"):
        GE2EConfig(pretrained_encoder="hub")
    with pytest.raises(ValueError, match="encoder_learning_rate must be > 0"):
        GE2EConfig(encoder_learning_rate=0.0)
    with pytest.raises(ValueError, match=r"input_values must be \(batch, windows, frames, 40\)"):
        tiny_model()(input_values=torch.zeros(1, 16000))


# ---------------------------------------------------------------- the encoder in each role: tiny recipe runs


def save_tiny_ge2e(path, labels=LABELS, seed=1, **overrides):
    model = tiny_model(seed=seed, **overrides)
    model.config.id2label = dict(enumerate(labels))
    model.config.label2id = {label: i for i, label in enumerate(labels)}
    model.save_pretrained(path)
    GE2EFeatureExtractor().save_pretrained(path)
    return model


def changed_parameters(before: dict, model) -> set[str]:
    return {name for name, p in model.named_parameters() if not torch.equal(p.detach(), before[name])}


@pytest.mark.parametrize("freeze", [True, False])
def test_student_finetune_frozen_or_at_its_own_rate(freeze, tone_corpus, tmp_path):
    initial = save_tiny_ge2e(tmp_path / "init", freeze_encoder=freeze, encoder_learning_rate=None if freeze else 1e-2)
    before = {name: p.detach().clone() for name, p in initial.named_parameters()}
    out = tmp_path / "ft"
    run(get_method("finetune"), recipe=tiny_recipe(tone_corpus, out, model_type=None, config_overrides=None,
                                                   model_name_or_path=str(tmp_path / "init"), max_steps=3))
    trained = AutoModelForAudioClassification.from_pretrained(out)
    assert type(trained) is GE2EForAudioClassification
    assert type(AutoFeatureExtractor.from_pretrained(out)) is GE2EFeatureExtractor
    changed = changed_parameters(before, trained)
    assert any(name.startswith("classifier.") for name in changed)
    assert any(name.startswith("ge2e.lstm.") for name in changed) == (not freeze)


def test_student_from_model_type_keeps_the_wheels_encoder_when_frozen(tone_corpus, tmp_path):
    # `model_type: hf_mtkd_ge2e` with no overrides: the pretrained encoder, frozen; only the classifier trains.
    needs_resemblyzer()
    out = tmp_path / "fresh"
    run(get_method("finetune"), recipe=tiny_recipe(tone_corpus, out, model_type="hf_mtkd_ge2e", config_overrides=None,
                                                   max_steps=2))
    trained = AutoModelForAudioClassification.from_pretrained(out)
    for name, tensor in load_resemblyzer_state().items():
        assert torch.equal(trained.ge2e.state_dict()[name], tensor), name
    assert AutoFeatureExtractor.from_pretrained(out).to_dict() == GE2EFeatureExtractor().to_dict()


def test_teacher_of_mtkd(tone_corpus, tmp_path):
    # A GE2E classifier teaches a tiny wav2vec2 student: its own front end, its logits in the KD term.
    teacher = save_tiny_ge2e(tmp_path / "teacher", labels=list(reversed(LABELS)))  # aligned by label name
    out = tmp_path / "mtkd"
    run(get_method("mtkd"), recipe=tiny_recipe(tone_corpus, out, method="mtkd", kd_lambda=0.5, logging_steps=1,
                                               teachers=[{"model": str(tmp_path / "teacher"), "language": "en"}]))
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    assert any(entry.get("kd_loss", 0) > 0 for entry in history)

    loaded = load_teacher(TeacherSpec(model=str(tmp_path / "teacher"), name="en"), LABELS, Wav2Vec2FeatureExtractor())
    assert not loaded.shares_student_inputs and isinstance(loaded.feature_extractor, GE2EFeatureExtractor)
    waves = tones([8000, 20000])
    inputs = GE2EFeatureExtractor()(waves, sampling_rate=RATE, return_tensors="pt")
    logits = teacher_logits_for_batch([loaded], {}, [dict(inputs)])[0]
    with torch.no_grad():
        expected = teacher(**inputs).logits.flip(-1)  # reversed label order, back in the student's
    torch.testing.assert_close(logits, expected, atol=1e-6, rtol=0)


def test_teacher_of_the_meta_teacher_method(tmp_path):
    # The demo meta_curriculum recipe with a GE2E teacher: T' clones its `classifier` on the window statistics.
    corpus = write_tone_corpus(tmp_path / "corpus", speakers_per_language=4)
    save_tiny_ge2e(tmp_path / "teacher")
    recipe = {key: value for key, value in load_recipe(ROOT / "recipes" / "demo" / "meta_curriculum.yaml").items()
              if key not in ("output_dir", "demo_corpus")}
    recipe.update(num_train_epochs=1, meta_epochs=1, curriculum_episodes=2, curriculum_steps_per_episode=2,
                  per_device_train_batch_size=8, n_bootstrap=10, report_to="none", data_dir=str(corpus),
                  teacher_model_name_or_path=str(tmp_path / "teacher"), output_dir=str(tmp_path / "out"))
    summary = run(get_method("meta_curriculum"), recipe=recipe)
    assert summary.method == "meta_curriculum"
    assert {"teacher", "meta_teacher"} <= set(summary["stage_results"])


def test_pretrained_floor_of_the_classic_baseline(tone_corpus, tmp_path):
    needs_resemblyzer()
    wave = tones([24000])[0]
    model, fe = pretrained_model(), GE2EFeatureExtractor()
    with torch.no_grad():
        windows, mask = model.ge2e(**fe(wave, sampling_rate=RATE, return_tensors="pt"))
    features = clip_features(wave, RATE, "ge2e")
    assert features.shape == (512,)
    np.testing.assert_allclose(features, window_statistics(windows, mask)[0].numpy(), atol=1e-6, rtol=0)

    recipe = {"method": "classic_baseline", "classic_feature_set": "ge2e", "data_dir": str(tone_corpus),
              "output_dir": str(tmp_path / "floor"), "classic_c_grid": [0.1, 1.0], "n_bootstrap": 20,
              "report_to": "none"}
    summary = run(get_method("classic_baseline"), recipe=recipe)
    test = json.loads((tmp_path / "floor" / "test_metrics.json").read_text())
    assert summary["classic_baseline"]["feature_set"] == "ge2e" and test["overall"]["n"] == 16
    assert load_classic_baseline(tmp_path / "floor")[1]["feature_set"] == "ge2e"


def test_cost_benchmark_writes_its_table(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import ge2e_cost

    report = ge2e_cost.main(["--output", str(tmp_path / "ge2e.json"), "--rounds", "1", "--warmup", "0",
                             "--clip-seconds", "1"])
    teacher, student = report["rows"]
    assert teacher["encoder_parameters"] == 1_423_616 and student["time_over_student"] == 1.0
    assert teacher["real_time_factor"] == pytest.approx(1.0 / teacher["cpu_seconds"])
    assert "| GE2E teacher" in (tmp_path / "ge2e.md").read_text()
