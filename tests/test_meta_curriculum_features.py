"""Feature and teacher caches of the meta-curriculum method: reuse, invalidation, contents; frame fixing;
the intensity column through the corpus readers; curriculum buckets."""

import numpy as np
import pytest
import torch

from hf_mtkd.arguments import DataArguments
from hf_mtkd.data import load_raw_dataset
from hf_mtkd.meta_curriculum.curriculum import UNRATED, buckets_by_column, buckets_by_teacher_probability, make_buckets
from hf_mtkd.meta_curriculum.features import INPUT_FEATURES, TEACHER_FEATURES, TEACHER_LOGITS, add_upstream_features
from hf_mtkd.meta_curriculum.teacher import add_teacher_logits_and_features, classifier_of, load_frozen_teacher
from hf_mtkd.models.inverted_transformer.upstream import fix_frames, load_upstream
from meta_curriculum_helpers import LABELS, RATE, save_tiny_hubert, waveform_dataset
from corpora_fakes import write_emodb, write_ravdess
from testing_utils import save_tiny_classifier


class ForwardCounter:
    def __init__(self, module):
        self.calls = 0
        module.register_forward_hook(self)

    def __call__(self, module, args, output):
        self.calls += 1


def _features(dataset, upstream, config, fe, **kwargs):
    return add_upstream_features(dataset, upstream, config, fe, **kwargs)


def test_feature_cache_is_reused_and_invalidated_by_weights_frames_and_layer(tmp_path):
    save_tiny_hubert(tmp_path / "hubert")
    dataset = waveform_dataset(tmp_path / "data", n=4)
    upstream, config, fe = load_upstream(str(tmp_path / "hubert"), -1, max_frames=12, max_input_samples=RATE)
    counter = ForwardCounter(upstream)
    first = _features(dataset, upstream, config, fe)
    assert counter.calls == 4 and np.asarray(first[INPUT_FEATURES]).shape == (4, 12, 16)

    again = _features(dataset, upstream, config, fe)  # same upstream: read back from the datasets cache
    assert counter.calls == 4
    assert again.cache_files == first.cache_files
    np.testing.assert_array_equal(np.asarray(again[INPUT_FEATURES]), np.asarray(first[INPUT_FEATURES]))

    with torch.no_grad():
        upstream.encoder.encoder.layers[-1].final_layer_norm.bias.add_(1.0)  # a changed weight
    changed = _features(dataset, upstream, config, fe)
    assert counter.calls == 8
    assert not np.allclose(np.asarray(changed[INPUT_FEATURES]), np.asarray(first[INPUT_FEATURES]))

    other = load_upstream(str(tmp_path / "hubert"), 1, max_frames=12, max_input_samples=RATE)  # another layer
    _features(dataset, other[0], other[1], other[2])
    longer = load_upstream(str(tmp_path / "hubert"), -1, max_frames=20, max_input_samples=RATE)  # more frames
    out = _features(dataset, longer[0], longer[1], longer[2])
    assert np.asarray(out[INPUT_FEATURES]).shape == (4, 20, 16)
    assert len({ds.cache_files[0]["filename"] for ds in (first, changed, out)}) == 3


def test_filterbank_cache_keys_on_its_settings_and_dtype(tmp_path):
    dataset = waveform_dataset(tmp_path / "data", n=3)
    a = load_upstream(None, None, filterbank_kwargs={"n_mels": 10}, max_frames=15, max_input_samples=None)
    b = load_upstream(None, None, filterbank_kwargs={"n_mels": 12}, max_frames=15, max_input_samples=None)
    c = load_upstream(
        None, None, filterbank_kwargs={"filterbank": "mfcc", "n_mfcc": 7}, max_frames=15, max_input_samples=None
    )
    outs = [_features(dataset, *u) for u in (a, b, c)] + [_features(dataset, *a, feature_dtype="float16")]
    assert [np.asarray(o[INPUT_FEATURES]).shape[-1] for o in outs] == [10, 12, 7, 10]
    half = np.asarray(outs[3][INPUT_FEATURES])  # stored as float16 (read back as float32 by datasets' numpy format)
    assert outs[3].features[INPUT_FEATURES].dtype == "float16"
    np.testing.assert_array_equal(half, half.astype(np.float16).astype(half.dtype))
    assert len({o.cache_files[0]["filename"] for o in outs}) == 4
    # Each band standardised over the clip's own frames, then zero-padded to max_frames.
    whole = load_upstream(None, None, filterbank_kwargs={"n_mels": 10}, max_frames=100, max_input_samples=None)
    first = np.asarray(_features(dataset, *whole)[INPUT_FEATURES])[0]
    frames = 1 + len(dataset[0]["waveform"]) // 160
    np.testing.assert_allclose(first[:frames].mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(first[:frames].std(axis=0), 1.0, atol=1e-3)
    assert frames < 100 and not first[frames:].any()


def test_fix_frames_crops_and_pads():
    x = torch.arange(12.0).view(1, 4, 3)
    assert torch.equal(fix_frames(x, 2), x[:, :2])
    padded = fix_frames(x, 6)
    assert padded.shape == (1, 6, 3) and torch.equal(padded[:, :4], x) and padded[:, 4:].abs().sum() == 0


def test_teacher_cache_holds_logits_and_the_classifier_input(tmp_path):
    save_tiny_classifier(tmp_path / "teacher", list(reversed(LABELS)))  # another label order: aligned by name
    dataset = waveform_dataset(tmp_path / "data", n=3)
    _, _, fe = load_upstream(None, None, max_frames=10, max_input_samples=None)
    teacher = load_frozen_teacher(str(tmp_path / "teacher"), LABELS, fe)
    counter = ForwardCounter(teacher.model)
    cached = add_teacher_logits_and_features(dataset, teacher, sampling_rate=RATE)
    assert counter.calls == 3  # clip by clip
    logits = np.asarray(cached[TEACHER_LOGITS])
    features = torch.as_tensor(np.asarray(cached[TEACHER_FEATURES]))
    with torch.no_grad():
        inputs = teacher.feature_extractor(np.asarray(dataset[0]["waveform"]), sampling_rate=RATE, return_tensors="pt")
        own = teacher.model(**inputs).logits[0]
        from_features = teacher.model.classifier(features)
    np.testing.assert_allclose(logits[0], own.numpy()[::-1], atol=1e-5)  # student order = reversed teacher order
    np.testing.assert_allclose(logits, from_features.numpy()[:, ::-1], atol=1e-5)
    calls = counter.calls
    add_teacher_logits_and_features(dataset, teacher, sampling_rate=RATE)
    assert counter.calls == calls  # reused
    with torch.no_grad():
        teacher.model.classifier.bias.add_(1.0)
    add_teacher_logits_and_features(dataset, teacher, sampling_rate=RATE)
    assert counter.calls > calls  # a changed teacher recomputes


def test_teacher_without_classifier_is_refused():
    with pytest.raises(ValueError, match="no classification head"):
        classifier_of(torch.nn.Linear(2, 2))


def test_intensity_survives_concatenated_corpora_and_makes_buckets(tmp_path):
    emodb, ravdess = write_emodb(tmp_path / "emodb"), write_ravdess(tmp_path / "ravdess")
    args = DataArguments(corpus=["emodb", "ravdess"], corpus_root=[str(emodb), str(ravdess)])
    train = load_raw_dataset(args)["train"]
    assert {"intensity", "gender", "text_id", "vocal_channel"} <= set(train.column_names)
    by_language = {}
    for language, intensity in zip(train["language"], train["intensity"]):
        by_language.setdefault(language, set()).add(intensity)
    assert by_language == {"de": {""}, "en": {"normal"}}
    buckets = buckets_by_column(train["intensity"], ["strong", "normal"], "intensity")
    assert buckets.names == ["normal", UNRATED]
    assert buckets.sizes() == {
        "normal": by_language and train["language"].count("en"),
        UNRATED: train["language"].count("de"),
    }


def test_buckets_by_column_order_and_teacher_fallback():
    values = ["normal", "strong", "", "normal", "strong", None]
    buckets = buckets_by_column(values, ["strong", "normal"], "intensity")
    assert buckets.names == ["strong", "normal", UNRATED]
    assert [idx.tolist() for idx in buckets.indices] == [[1, 4], [0, 3], [2, 5]]
    logits = np.array([[5.0, 0.0], [0.0, 0.0], [0.0, 5.0], [1.0, 0.0]])
    labels = np.array([0, 0, 0, 0])  # true-class probabilities: 0.99, 0.5, 0.007, 0.73
    by_teacher = buckets_by_teacher_probability(logits, labels, 2)
    assert [idx.tolist() for idx in by_teacher.indices] == [[0, 3], [1, 2]]  # most confident first


def test_make_buckets_falls_back_to_the_teacher_without_two_levels(tmp_path):
    dataset = waveform_dataset(tmp_path / "data", n=6, intensity=["normal"] * 6)
    dataset = dataset.add_column("teacher_logits", [[float(i), 0.0, 0.0, 0.0] for i in range(6)])
    buckets = make_buckets(dataset, "intensity", ["strong", "normal"], num_buckets=3)
    assert buckets.source == "teacher probability" and len(buckets.names) == 3
    assert make_buckets(dataset, "missing_column", ["strong"], 2).source == "teacher probability"


def test_buckets_run_from_easy_to_hard_with_unrated_clips_spread_by_the_teacher(tmp_path):
    # RAVDESS rows carry intensity, EmoDB rows none: the unrated clips join the levels by the teacher's confidence
    # (most confident to the easiest level) instead of forming one last "hardest" bucket of a whole corpus.
    intensity = ["strong", "normal", "strong", "normal", "", "", "", ""]
    dataset = waveform_dataset(tmp_path / "data", n=8, intensity=intensity)
    labels = np.asarray(dataset["labels"])
    confidence = [0.0, 0.0, 0.0, 0.0, 5.0, -5.0, 3.0, -3.0]  # teacher logit of the true class for rows 4-7
    logits = np.zeros((8, 4), dtype=np.float32)
    logits[np.arange(8), labels] = confidence
    dataset = dataset.add_column("teacher_logits", logits.tolist())
    buckets = make_buckets(dataset, "intensity", ["strong", "normal"], num_buckets=3)
    assert buckets.names == ["strong", "normal"]
    assert [idx.tolist() for idx in buckets.indices] == [[0, 2, 4, 6], [1, 3, 5, 7]]
    assert buckets.teacher_confidence[0] > buckets.teacher_confidence[1]
    only_one_level = dataset.remove_columns("intensity").add_column("intensity", ["normal"] * 4 + [""] * 4)
    assert make_buckets(only_one_level, "intensity", ["strong", "normal"], 3).source == "teacher probability"


def _save_logmel_teacher(path):
    from hf_mtkd.models.logmel_cnn import LogMelCNNConfig, LogMelCNNForAudioClassification, LogMelFeatureExtractor

    torch.manual_seed(0)
    labels = ["angry", "happy", "neutral", "sad"]
    tiny = {"num_mel_bins": 16, "conv_channels": [8, 8, 16], "conv_kernels": [5, 3, 3], "conv_strides": [2, 1, 2],
            "classifier_hidden_size": 8}
    config = LogMelCNNConfig(
        **tiny, num_labels=4, id2label=dict(enumerate(labels)), label2id={name: i for i, name in enumerate(labels)}
    )
    model = LogMelCNNForAudioClassification(config)
    model.save_pretrained(path)
    LogMelFeatureExtractor(num_mel_bins=tiny["num_mel_bins"]).save_pretrained(path)
    return model


def test_a_log_mel_cnn_teacher_has_its_head_found_and_its_pooled_features_cached(tmp_path):
    # Issue 23, item 4: 'has no classifier module' after data decoding for the log-mel CNN (its head is `head`).
    from hf_mtkd.meta_curriculum.teacher import load_frozen_teacher, teacher_outputs

    model = _save_logmel_teacher(tmp_path / "teacher")
    assert classifier_of(model) is model.head
    from transformers import Wav2Vec2FeatureExtractor

    fe = Wav2Vec2FeatureExtractor()
    teacher = load_frozen_teacher(str(tmp_path / "teacher"), ["angry", "happy", "neutral", "sad"], fe)
    inputs = teacher.feature_extractor(np.zeros(8000, dtype=np.float32), sampling_rate=16000, return_tensors="pt")
    logits, pooled = teacher_outputs(teacher, dict(inputs))
    assert logits.shape == (1, 4) and pooled.shape == (1, model.logmel_cnn.pooled_size)


def test_a_teacher_without_a_findable_head_is_refused_before_the_data_is_read(tmp_path, monkeypatch):
    # The shared flow asks a self-fitting method for its sampling_rate before it reads any audio: the head check
    # runs there.
    from hf_mtkd.arguments import DataArguments, ModelArguments
    from hf_mtkd.meta_curriculum import MetaCurriculumConfig
    from hf_mtkd.meta_curriculum import teacher as teacher_module
    from hf_mtkd.meta_curriculum.method import MetaCurriculumMethod
    from hf_mtkd.training.method import RunSetup

    _save_logmel_teacher(tmp_path / "teacher")
    config = MetaCurriculumConfig(output_dir=str(tmp_path / "out"), report_to="none",
                                  teacher_model_name_or_path=str(tmp_path / "teacher"))
    setup = RunSetup(
        ModelArguments(model_type="hf_mtkd_inverted_transformer"), DataArguments(dataset_path="unused"), config, ()
    )
    assert MetaCurriculumMethod().sampling_rate(setup) > 0

    def no_head(model):
        raise ValueError(f"{type(model).__name__}: no classification head")

    monkeypatch.setattr(teacher_module, "classifier_of", no_head)
    with pytest.raises(ValueError, match="LogMelCNNForAudioClassification: no classification head"):
        MetaCurriculumMethod().sampling_rate(setup)


def test_the_head_is_found_by_declaration_by_name_or_as_the_one_module_ending_in_one_output_per_label():
    class Config:
        num_labels = 3

    class Custom(torch.nn.Module):
        base_model_prefix = "encoder"

        def __init__(self):
            super().__init__()
            self.config = Config()
            self.encoder = torch.nn.Sequential(torch.nn.Linear(5, 3))  # the encoder's own 3 outputs do not count
            self.projector = torch.nn.Linear(3, 8)
            self.out = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(8, 3))

    model = Custom()
    assert classifier_of(model) is model.out
    type(model).classifier_module_name = "projector"
    assert classifier_of(model) is model.projector
    del type(model).classifier_module_name
    model.extra = torch.nn.Linear(8, 3)  # two candidates: ambiguous
    with pytest.raises(ValueError, match="classifier_module_name"):
        classifier_of(model)
