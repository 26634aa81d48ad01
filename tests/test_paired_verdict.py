"""The paired bootstrap of a UR difference (hf_mtkd.metrics.paired) against a naive loop and hand computations."""

import numpy as np
import pytest

from hf_mtkd.metrics import compute_ser_metrics
from hf_mtkd.metrics.paired import BETTER, NO_DIFFERENCE, WORSE, paired_ur_difference, unweighted_recall

LABELS = ["angry", "happy", "neutral", "sad"]


def test_unweighted_recall_matches_compute_ser_metrics_and_a_hand_value():
    references = [0, 0, 0, 1, 1, 2]  # class 3 absent: UR over classes 0-2
    predictions = [0, 0, 1, 1, 0, 3]
    # Recalls 2/3, 1/2, 0/1 -> (2/3 + 1/2 + 0) / 3
    assert unweighted_recall(predictions, references, 4) == pytest.approx((2 / 3 + 1 / 2) / 3)
    expected = compute_ser_metrics(predictions, references, LABELS, n_bootstrap=0)["overall"]["UR"]
    assert unweighted_recall(predictions, references, 4) == pytest.approx(expected)


def naive_paired(references, baseline, method, n_bootstrap, seed, confidence=0.95):
    """One resample at a time, UR from compute_ser_metrics: the definition, slowly."""
    references = np.asarray(references)
    rng = np.random.default_rng(seed)
    n = len(references)
    draws = rng.integers(0, n, size=(n_bootstrap, n))
    samples = []
    for idx in draws:
        diffs = []
        for b, m in zip(baseline, method):
            ur_b = compute_ser_metrics(np.asarray(b)[idx], references[idx], LABELS, n_bootstrap=0)["overall"]["UR"]
            ur_m = compute_ser_metrics(np.asarray(m)[idx], references[idx], LABELS, n_bootstrap=0)["overall"]["UR"]
            diffs.append(ur_m - ur_b)
        samples.append(np.mean(diffs))
    alpha = (1 - confidence) / 2
    return np.quantile(samples, [alpha, 1 - alpha])


def test_interval_equals_a_naive_loop_over_resamples_pooled_over_seeds():
    rng = np.random.default_rng(1)
    references = rng.integers(0, 4, size=40)
    baseline = [np.where(rng.random(40) < 0.5, references, rng.integers(0, 4, size=40)) for _ in range(3)]
    method = [np.where(rng.random(40) < 0.7, references, rng.integers(0, 4, size=40)) for _ in range(3)]
    result = paired_ur_difference(references, baseline, method, 4, n_bootstrap=200, seed=7)
    low, high = naive_paired(references, baseline, method, 200, seed=7)
    assert (result.ci_low, result.ci_high) == (pytest.approx(low), pytest.approx(high))
    point = np.mean([unweighted_recall(m, references, 4) - unweighted_recall(b, references, 4)
                     for b, m in zip(baseline, method)])
    assert result.difference == pytest.approx(point)
    assert (result.n_clips, result.n_seeds) == (40, 3)
    # A 90% interval is narrower than the 95% one: the percentiles are the ones asked for.
    narrow = paired_ur_difference(references, baseline, method, 4, n_bootstrap=200, seed=7, confidence=0.9)
    low90, high90 = naive_paired(references, baseline, method, 200, seed=7, confidence=0.9)
    assert (narrow.ci_low, narrow.ci_high) == (pytest.approx(low90), pytest.approx(high90))
    assert narrow.ci_high - narrow.ci_low < result.ci_high - result.ci_low


def test_verdicts_follow_the_interval():
    references = np.repeat(np.arange(4), 50)
    perfect = [references.copy()]
    constant = [np.zeros_like(references)]  # predicts one class: UR 25%
    better = paired_ur_difference(references, constant, perfect, 4, n_bootstrap=300)
    assert better.verdict == BETTER and better.difference == pytest.approx(0.75) and better.ci_low > 0
    worse = paired_ur_difference(references, perfect, constant, 4, n_bootstrap=300)
    assert worse.verdict == WORSE and worse.ci_high < 0
    same = paired_ur_difference(references, perfect, perfect, 4, n_bootstrap=300)
    assert same.verdict == NO_DIFFERENCE and same.ci_low == same.ci_high == 0.0
    # One clip of 200 apart: no detectable difference.
    one_off = references.copy()
    one_off[0] = 1
    close = paired_ur_difference(references, perfect, [one_off], 4, n_bootstrap=300)
    assert close.verdict == NO_DIFFERENCE and close.difference < 0


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="same number of seeds"):
        paired_ur_difference([0, 1], [[0, 1]], [[0, 1], [1, 0]], 2)
    with pytest.raises(ValueError, match="method seed #0 has 1 predictions for 2 clips"):
        paired_ur_difference([0, 1], [[0, 1]], [[0]], 2)
