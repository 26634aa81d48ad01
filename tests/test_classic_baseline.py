"""The classic floor: MFCC statistics against a hand computation, the classifier on separable data, end to end."""

import importlib.util
import json

import numpy as np
import pytest
from datasets import Dataset

from testing_utils import LABELS
from hf_mtkd.classic_baseline import (
    ClassicBaselineArguments,
    MfccSettings,
    egemaps_functionals,
    fit_classic_baseline,
    load_classic_baseline,
    mfcc_statistics,
    predict_labels,
    predict_log_probabilities,
    save_classic_baseline,
    split_features,
)
from hf_mtkd.arguments import DataArguments
from hf_mtkd.data import prepare_data
from hf_mtkd.registry import get_method
from hf_mtkd.training.run import run

RATE = 16000


def hand_mfccs(frames: list[np.ndarray], n_mels=40, n_mfcc=20) -> list[np.ndarray]:
    """MFCCs of the distinct frames of one clip, written out: Hann window, power spectrum, HTK mel bands,
    dB floored at 80 dB under the clip's loudest band, DCT-II (orthonormal)."""
    import torchaudio

    n = frames[0].size
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)  # periodic Hann, torch.hann_window's default
    # The mel filter bank is the standard HTK one (torchaudio's MelSpectrogram default); used as a definition.
    bank = torchaudio.functional.melscale_fbanks(n // 2 + 1, 0.0, RATE / 2, n_mels, RATE).numpy()
    dbs = [10 * np.log10(np.maximum((np.abs(np.fft.rfft(f * window)) ** 2) @ bank, 1e-10)) for f in frames]
    top = max(db.max() for db in dbs)
    k, m = np.meshgrid(np.arange(n_mfcc), np.arange(n_mels))
    dct = np.cos(np.pi / n_mels * (m + 0.5) * k) * np.sqrt(2.0 / n_mels)
    dct[:, 0] /= np.sqrt(2.0)
    return [np.maximum(db, top - 80.0) @ dct for db in dbs]


def test_mfcc_statistics_match_a_hand_computation_on_a_tone():
    # 200 Hz repeats every 80 samples and the hop is 160: every 400-sample frame holds the same samples.
    t = np.arange(RATE) / RATE
    tone = (0.3 * np.sin(2 * np.pi * 200.0 * t)).astype(np.float32)
    stats = mfcc_statistics(tone, RATE)
    assert stats.shape == (60,) and stats.dtype == np.float32
    (expected,) = hand_mfccs([tone[:400].astype(np.float64)])
    np.testing.assert_allclose(stats[:20], expected, rtol=1e-3, atol=1e-2)
    np.testing.assert_allclose(stats[20:], 0.0, atol=1e-2)  # constant frames: no spread, no deltas


def test_mfcc_statistics_see_a_change_of_pitch():
    # Half a second at 200 Hz, half at 400 Hz: each coefficient takes two values on equal halves, so its
    # standard deviation is half their difference (the few frames straddling the switch aside).
    t = np.arange(RATE // 2) / RATE
    low, high = 0.3 * np.sin(2 * np.pi * 200.0 * t), 0.3 * np.sin(2 * np.pi * 400.0 * t)
    stats = mfcc_statistics(np.concatenate([low, high]).astype(np.float32), RATE)
    a, b = hand_mfccs([low[:400], high[:400]])
    big = np.abs(a - b) > 5.0
    assert big.sum() >= 3
    np.testing.assert_allclose(stats[20:40][big], np.abs(a - b)[big] / 2, rtol=0.1)
    assert (stats[40:][big] > 0.1).all()  # the switch shows in the deltas


def test_mfcc_statistics_of_a_clip_shorter_than_a_frame():
    stats = mfcc_statistics(np.full(100, 0.1, dtype=np.float32), RATE, MfccSettings(n_mfcc=13))
    assert stats.shape == (39,) and np.isfinite(stats).all()


def blobs(n_per_class, seed, k=4, d=6, spread=0.3):
    rng = np.random.default_rng(seed)
    centres = np.eye(k, d) * 3.0
    x = np.concatenate([centres[c] + spread * rng.standard_normal((n_per_class, d)) for c in range(k)])
    y = np.repeat(np.arange(k), n_per_class)
    return x, y


def test_classifier_on_separable_data_and_choice_of_c():
    (xt, yt), (xv, yv), (xs, ys) = blobs(20, 0), blobs(10, 1), blobs(10, 2)
    baseline = fit_classic_baseline(xt, yt, xv, yv, LABELS, c_grid=[10.0, 0.01, 1.0])
    assert sorted(baseline.validation_ur) == [0.01, 1.0, 10.0]
    assert all(ur == 1.0 for ur in baseline.validation_ur.values())
    assert baseline.C == 0.01  # ties go to the strongest regularisation
    assert (predict_labels(baseline, xs) == ys).all()
    log_p = predict_log_probabilities(baseline, xs)
    assert log_p.shape == (40, 4)
    np.testing.assert_allclose(np.exp(log_p).sum(axis=1), 1.0, rtol=1e-6)


def test_c_is_chosen_on_validation():
    # Validation is drawn from the training distribution with the labels of class 3 swapped into class 0:
    # a classifier that fits train harder (large C) scores lower there. The chosen C must be the argmax.
    (xt, yt), (xv, yv) = blobs(20, 0, spread=1.5), blobs(20, 1, spread=1.5)
    baseline = fit_classic_baseline(xt, yt, xv, yv, LABELS, c_grid=[1e-4, 1e-2, 1.0, 100.0])
    assert baseline.validation_ur[baseline.C] == max(baseline.validation_ur.values())
    assert len(set(baseline.validation_ur.values())) > 1


def test_class_missing_from_train_gets_no_probability():
    (xt, yt), (xv, yv) = blobs(10, 0), blobs(5, 1)
    keep = yt != 2
    baseline = fit_classic_baseline(xt[keep], yt[keep], xv, yv, LABELS, c_grid=[1.0])
    log_p = predict_log_probabilities(baseline, xv)
    assert np.isneginf(log_p[:, 2]).all() and np.isfinite(log_p[:, [0, 1, 3]]).all()


def test_bad_inputs_are_named():
    x, y = blobs(5, 0)
    with pytest.raises(ValueError, match="train: 20 feature rows but 3 labels"):
        fit_classic_baseline(x, y[:3], x, y, LABELS)
    with pytest.raises(ValueError, match="validation features contain NaN"):
        fit_classic_baseline(x, y, np.full_like(x, np.nan), y, LABELS)
    with pytest.raises(ValueError, match="single class"):
        fit_classic_baseline(x, np.zeros_like(y), x, y, LABELS)
    with pytest.raises(ValueError, match="c_grid"):
        fit_classic_baseline(x, y, x, y, LABELS, c_grid=[0.0])
    with pytest.raises(ValueError, match="classic_feature_set must be one of"):
        ClassicBaselineArguments(classic_feature_set="wav2vec")
    with pytest.raises(ValueError, match="classic_class_weight"):
        ClassicBaselineArguments(classic_class_weight="auto")


def test_split_features_are_per_row_and_cached(tmp_path):
    rng = np.random.default_rng(0)
    waves = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (4000, 8000, 6000)]
    ds = Dataset.from_dict({"waveform": waves, "labels": [0, 1, 2]}).with_format("numpy")
    ds = Dataset.from_dict(ds.to_dict()).with_format("numpy")
    features = split_features(ds, RATE)
    assert features.shape == (3, 60)
    for row, wave in zip(features, waves):
        np.testing.assert_allclose(row, mfcc_statistics(wave, RATE), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="no 'waveform' column"):
        split_features(ds.remove_columns("waveform"), RATE)
    with pytest.raises(ValueError, match="feature_set must be one of"):
        split_features(ds, RATE, feature_set="fbank")


@pytest.mark.skipif(importlib.util.find_spec("opensmile") is None, reason="opensmile not installed (extra 'classic')")
def test_egemaps_functionals():
    t = np.arange(RATE) / RATE
    features = egemaps_functionals((0.3 * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32), RATE)
    assert features.shape == (88,) and np.isfinite(features).all()


def test_saved_floor_reloads_to_the_same_predictions(tmp_path):
    (xt, yt), (xv, yv), (xs, _) = blobs(20, 0, spread=1.5), blobs(10, 1, spread=1.5), blobs(10, 2, spread=1.5)
    baseline = fit_classic_baseline(xt, yt, xv, yv, LABELS, c_grid=[0.1, 1.0])
    save_classic_baseline(baseline, tmp_path, feature_set="mfcc")
    loaded, extra = load_classic_baseline(tmp_path)
    assert extra == {"feature_set": "mfcc"} and loaded.C == baseline.C and loaded.label_names == LABELS
    np.testing.assert_allclose(
        predict_log_probabilities(loaded, xs), predict_log_probabilities(baseline, xs), rtol=1e-12
    )
    with pytest.raises(FileNotFoundError, match="classic_baseline.json is missing"):
        load_classic_baseline(tmp_path / "nothing")


def test_method_classic_baseline_reports_like_every_stage(tone_corpus, tmp_path):
    # No model keys needed; the shared reports (metrics JSON, run summary) come out as for a student.
    recipe = {"method": "classic_baseline", "data_dir": str(tone_corpus), "output_dir": str(tmp_path / "floor"),
              "classic_c_grid": [0.1, 1.0], "n_bootstrap": 20, "report_to": "none"}
    summary = run(get_method("classic_baseline"), recipe=recipe)
    test = json.loads((tmp_path / "floor" / "test_metrics.json").read_text())
    assert (
        test["overall"]["n"] == 16 and set(test["per_language"]) == {"en", "fi"} and len(test["overall"]["UR_ci"]) == 2
    )
    assert summary["results"]["test"]["overall"]["UR"] == test["overall"]["UR"]
    assert summary["classic_baseline"]["C"] in (0.1, 1.0)
    loaded, extra = load_classic_baseline(tmp_path / "floor")
    assert extra["feature_set"] == "mfcc" and loaded.C == summary["classic_baseline"]["C"]
    assert (tmp_path / "floor" / "README.md").exists()  # the card


def test_method_chooses_c_on_the_validation_split(tone_corpus, tmp_path):
    # The validation UR reported for each C is that of a classifier fitted on the training split and scored on
    # the validation split, computed here by hand; test scores would differ (the grid is chosen so they do).
    grid = [0.001, 0.03, 1.0]
    recipe = {"method": "classic_baseline", "data_dir": str(tone_corpus), "output_dir": str(tmp_path / "floor"),
              "classic_c_grid": grid, "n_bootstrap": 0, "report_to": "none"}
    summary = run(get_method("classic_baseline"), recipe=recipe)
    splits = prepare_data(DataArguments(data_dir=str(tone_corpus)), RATE).splits
    features = {name: split_features(splits[name], RATE, "mfcc") for name in ("train", "validation", "test")}
    labels = {name: np.asarray(splits[name]["labels"]) for name in features}
    by_hand = {}
    for split in ("validation", "test"):
        fitted = fit_classic_baseline(features["train"], labels["train"], features[split], labels[split], LABELS,
                                      c_grid=grid)
        by_hand[split] = fitted.validation_ur
    assert by_hand["validation"] != by_hand["test"]
    reported = summary["classic_baseline"]["validation_UR_per_C"]
    assert reported == {str(c): pytest.approx(by_hand["validation"][c]) for c in grid}
    best = max(by_hand["validation"].values())
    assert summary["classic_baseline"]["C"] == min(c for c in grid if by_hand["validation"][c] == best)


def test_balanced_class_weight_weighs_each_class_by_the_inverse_of_its_size():
    # 40 clips of class 0, 5 of each other class, overlapping: "balanced" is the hand-computed weights
    # n / (k * n_c) (0.34375 for class 0, 2.75 for the others); without weights the fit differs.
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = blobs(40, 5, spread=1.5)
    keep = np.concatenate([np.arange(40), *(np.arange(40 * c, 40 * c + 5) for c in (1, 2, 3))])
    x, y = x[keep], y[keep]
    weights = {0: 55 / (4 * 40), 1: 55 / (4 * 5), 2: 55 / (4 * 5), 3: 55 / (4 * 5)}
    by_hand = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, class_weight=weights, max_iter=5000)).fit(x, y)
    balanced = fit_classic_baseline(x, y, x, y, LABELS, c_grid=[1.0], class_weight="balanced")
    plain = fit_classic_baseline(x, y, x, y, LABELS, c_grid=[1.0], class_weight=None)
    np.testing.assert_allclose(balanced.pipeline[-1].coef_, by_hand[-1].coef_, rtol=1e-3, atol=1e-3)
    assert np.abs(plain.pipeline[-1].coef_ - by_hand[-1].coef_).max() > 0.05
