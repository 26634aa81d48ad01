"""Whole utterances: the window rule, whole-clip evaluation through the Trainer, and predict agreeing with it."""

import json

import numpy as np
import pytest
from datasets import Dataset
from torch.utils.data import SequentialSampler
from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification

from testing_utils import LABELS, tiny_recipe
from hf_mtkd.arguments import DataArguments
from hf_mtkd.data import AudioClassificationCollator
from hf_mtkd.inference import EmotionPredictor
from hf_mtkd.registry import get_method
from hf_mtkd.metrics import compute_ser_metrics
from hf_mtkd.training import SERTrainer, SERTrainingArguments
from hf_mtkd.data import prepare_data
from hf_mtkd.training.run import run
from hf_mtkd.windowing import (
    CLIP_INDEX,
    WindowRule,
    add_length_column,
    average_by_clip,
    effective_window_seconds,
    random_training_windows,
    window_split,
)

RATE = 16000
TINY_LOGMEL = {"num_mel_bins": 16, "conv_channels": [8, 8, 16], "conv_kernels": [5, 3, 3], "conv_strides": [2, 1, 2],
               "classifier_hidden_size": 8}


def test_window_starts_and_windows():
    rule = WindowRule.from_seconds(1.0, RATE)
    assert rule.window_samples == 16000 and rule.min_samples == 1600
    assert rule.starts(56000) == [0, 16000, 32000, 40000]  # 3.5 s: the last window ends at the end
    assert rule.starts(48000) == [0, 16000, 32000]  # exact multiple: no extra window
    assert rule.starts(16000) == [0] and rule.starts(9000) == [0]
    clip = np.arange(56000, dtype=np.float32)
    windows = rule.windows(clip)
    assert [w[0] for w in windows] == [0, 16000, 32000, 40000] and all(w.size == 16000 for w in windows)
    (short,) = rule.windows(np.ones(9000, dtype=np.float32))
    assert short.size == 9000  # shorter than a window: itself, never stretched
    (tiny,) = rule.windows(np.ones(100, dtype=np.float32))
    assert tiny.size == 1600 and tiny[100:].sum() == 0  # under min_samples: zero-padded
    (whole,) = WindowRule.from_seconds(None, RATE).windows(clip)
    assert whole.size == 56000
    with pytest.raises(ValueError, match="must be > 0 seconds"):
        WindowRule.from_seconds(0.0, RATE)


def test_average_by_clip_hand_example():
    logits = np.array([[1.0, 0.0], [3.0, 2.0], [5.0, 5.0], [0.0, 4.0]])
    clip_index = [1, 0, 1, 1]
    np.testing.assert_allclose(average_by_clip(logits, clip_index, 2), [[3.0, 2.0], [2.0, 3.0]])
    pair = average_by_clip((logits, [logits * 2]), clip_index, 2)
    np.testing.assert_allclose(pair[1][0], [[6.0, 4.0], [4.0, 6.0]])
    with pytest.raises(ValueError, match="cover 0..2"):
        average_by_clip(logits, clip_index, 3)


def test_effective_window_and_random_windows():
    assert effective_window_seconds(3.0, 30.0) == 3.0
    assert effective_window_seconds(3.0, 1.3) == 1.3  # no window is longer than the audio kept
    assert effective_window_seconds(None, 6.0) == effective_window_seconds(0.0, 6.0) == 6.0  # whole clips
    assert random_training_windows(DataArguments(demo_corpus=True, max_duration_seconds=30.0))
    assert not random_training_windows(DataArguments(demo_corpus=True, max_duration_seconds=1.3))
    assert not random_training_windows(DataArguments(demo_corpus=True, random_crop=False))
    assert not random_training_windows(DataArguments(demo_corpus=True, train_window_seconds=0))
    with pytest.raises(ValueError, match="train_window_seconds must be > 0"):
        DataArguments(demo_corpus=True, train_window_seconds=-1)


def numpy_split(lengths, labels=None):
    waves = [np.full(n, i + 1, dtype=np.float32) for i, n in enumerate(lengths)]
    labels = labels or list(range(len(lengths)))
    ds = Dataset.from_dict({"waveform": waves, "labels": labels, "language": [f"l{i}" for i in range(len(lengths))]})
    return ds.with_format("numpy", columns=["waveform", "labels"], output_all_columns=True)


def test_window_split_rows_map_back_to_clips():
    ds = numpy_split([35000, 8000, 16000])
    windows = window_split(ds, WindowRule.from_seconds(1.0, RATE))
    rows = list(windows.dataset)
    assert len(rows) == 3 + 1 + 1
    assert [r["window_length"] for r in rows] == [16000, 16000, 16000, 16000, 8000]  # longest first
    assert sorted(windows.clip_index.tolist()) == [0, 0, 0, 1, 2]
    for row, clip in zip(rows, windows.clip_index):
        assert row[CLIP_INDEX] == clip and row["labels"] == clip and row["language"] == f"l{clip}"
        assert (row["waveform"] == clip + 1).all()  # the window holds its own clip's samples
    assert isinstance(rows[0]["waveform"], np.ndarray)  # the split's format is kept
    np.testing.assert_array_equal(windows.clip_labels, [0, 1, 2])


def test_length_column_caps_at_the_window():
    ds = add_length_column(numpy_split([35000, 8000]), 16000, "length")
    assert list(ds.with_format(None)["length"]) == [16000, 8000]


@pytest.fixture(scope="module")
def logmel_run(tone_corpus, tmp_path_factory):
    """A compact student trained on 0.5 s windows of 0.4-0.6 s tone clips: some clips are one short window,
    others two full ones, so evaluation batches mix lengths (padding with an attention mask)."""
    out = tmp_path_factory.mktemp("windows") / "logmel"
    run(
        get_method("finetune"),
        recipe=tiny_recipe(
            tone_corpus,
            out,
            model_type="hf_mtkd_logmel_cnn",
            config_overrides=TINY_LOGMEL,
            freeze_feature_encoder=False,
            train_window_seconds=0.5,
            max_steps=4,
            per_device_eval_batch_size=5,
            train_sampling_strategy="group_by_length",
        ),
    )
    return out


def make_trainer(model_dir, batch_size=5, strategy="group_by_length"):
    model = AutoModelForAudioClassification.from_pretrained(model_dir).eval()
    fe = AutoFeatureExtractor.from_pretrained(model_dir)
    collator = AudioClassificationCollator(fe, fe.sampling_rate)
    args = SERTrainingArguments(output_dir=str(model_dir / "eval"), per_device_eval_batch_size=batch_size,
                                report_to="none", train_sampling_strategy=strategy, use_cpu=True, eval_strategy="no",
                                save_strategy="no", load_best_model_at_end=False)
    return SERTrainer(model=model, args=args, data_collator=collator, eval_data_collator=collator, processing_class=fe)


def test_window_is_saved_in_the_config_and_predict_uses_it(logmel_run):
    assert AutoConfig.from_pretrained(logmel_run).train_window_seconds == 0.5
    assert EmotionPredictor(logmel_run).chunk_seconds == 0.5
    assert EmotionPredictor(logmel_run, chunk_seconds=None).rule.window_samples is None


def test_evaluation_and_predict_agree(logmel_run, tone_corpus):
    splits = prepare_data(DataArguments(data_dir=str(tone_corpus)), RATE).splits
    test = splits["test"]
    trainer = make_trainer(logmel_run)
    assert isinstance(trainer._get_eval_sampler(test), SequentialSampler)  # even with group_by_length
    output = trainer.predict(test)
    assert output.predictions.shape == (len(test), 4)
    np.testing.assert_array_equal(output.label_ids, test["labels"])
    windows = trainer.windowed(test)
    lengths = windows.dataset.with_format(None)["window_length"]
    assert len(set(lengths)) > 1 and len(windows.dataset) > len(test)  # padded batches and multi-window clips

    predictor = EmotionPredictor(logmel_run, batch_size=1)
    counts = np.bincount(windows.clip_index)
    for i, row in enumerate(test):
        logits, n_windows = predictor.logits(row["waveform"])
        assert n_windows == counts[i]
        np.testing.assert_allclose(logits, output.predictions[i], atol=1e-5, rtol=1e-5)

    # The run's own test report is the same numbers predict gives.
    saved = json.loads((logmel_run / "test_metrics.json").read_text())["overall"]
    labels = [int(np.argmax(predictor.logits(row["waveform"])[0])) for row in test]
    from_predict = compute_ser_metrics(labels, test["labels"], LABELS, n_bootstrap=0)["overall"]
    assert (saved["UR"], saved["WR"]) == pytest.approx((from_predict["UR"], from_predict["WR"]))


def test_validation_metrics_are_clip_level(logmel_run, tone_corpus):
    # compute_metrics during training sees one prediction per clip: the average of its windows' logits.
    splits = prepare_data(DataArguments(data_dir=str(tone_corpus)), RATE).splits
    trainer = make_trainer(logmel_run)
    expected = trainer.predict(splits["validation"]).predictions
    seen = {}

    def compute_metrics(prediction):
        seen.update(predictions=prediction.predictions, labels=prediction.label_ids)
        return {"UR": 0.5}

    trainer.compute_metrics = compute_metrics
    metrics = trainer.evaluate(splits["validation"])
    assert metrics["eval_UR"] == 0.5
    np.testing.assert_allclose(seen["predictions"], expected, atol=1e-6)
    np.testing.assert_array_equal(seen["labels"], splits["validation"]["labels"])
    assert trainer.compute_metrics is compute_metrics  # restored afterwards


def test_saved_window_is_capped_at_max_duration_seconds(tone_corpus, tmp_path):
    # train_window_seconds 3.0 with the audio cut at 0.5 s per clip: training sees 0.5 s windows at most, and
    # evaluation and predict must use that length, not 3.0 s (one window per clip where training saw two).
    out = tmp_path / "capped"
    run(get_method("finetune"), recipe=tiny_recipe(
        tone_corpus, out, model_type="hf_mtkd_logmel_cnn", config_overrides=TINY_LOGMEL, freeze_feature_encoder=False,
        train_window_seconds=3.0, max_duration_seconds=0.5, max_steps=1, n_bootstrap=0))
    assert AutoConfig.from_pretrained(out).train_window_seconds == 0.5
    assert EmotionPredictor(out).chunk_seconds == 0.5
