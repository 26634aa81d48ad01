"""The paired bootstrap of a UR difference (hf_mtkd.metrics.paired) against a naive loop and hand computations."""

import numpy as np
import pytest

from hf_mtkd.metrics import compute_ser_metrics
from hf_mtkd.metrics.paired import (
    BETTER,
    NO_DIFFERENCE,
    WORSE,
    paired_ur_difference,
    stratified_paired_ur_difference,
    unweighted_recall,
)

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


def naive_stratified(strata, n_bootstrap, seed, confidence=0.95):
    """Folds: each resample draws every fold's clips within that fold (fold by fold, from one generator) and
    averages the folds' UR differences; one resample at a time, UR from compute_ser_metrics."""
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, len(references), size=(n_bootstrap, len(references))) for references, _, _ in strata]
    samples = []
    for r in range(n_bootstrap):
        diffs = []
        for (references, (base,), (method,)), fold_draws in zip(strata, draws):
            idx, references = fold_draws[r], np.asarray(references)
            ur_b, ur_m = (
                compute_ser_metrics(np.asarray(p)[idx], references[idx], LABELS, n_bootstrap=0)["overall"]["UR"]
                for p in (base, method)
            )
            diffs.append(ur_m - ur_b)
        samples.append(np.mean(diffs))
    alpha = (1 - confidence) / 2
    return np.quantile(samples, [alpha, 1 - alpha])


def test_over_folds_each_fold_is_resampled_within_itself_and_the_difference_is_the_mean_over_folds():
    rng = np.random.default_rng(2)
    strata = []
    for n, skill in ((30, 0.4), (24, 0.6), (18, 0.8)):  # folds of different sizes and difficulty
        references = rng.integers(0, 4, size=n)
        strata.append((references, [np.where(rng.random(n) < skill, references, rng.integers(0, 4, size=n))],
                       [np.where(rng.random(n) < skill + 0.1, references, rng.integers(0, 4, size=n))]))
    result = stratified_paired_ur_difference(strata, 4, n_bootstrap=150, seed=3)
    low, high = naive_stratified(strata, 150, seed=3)
    assert (result.ci_low, result.ci_high) == (pytest.approx(low), pytest.approx(high))
    # The point: the mean over folds of each fold's UR difference (the fold table's mean UR, method minus
    # baseline), not the UR difference over the pooled clips.
    per_fold = [unweighted_recall(m[0], r, 4) - unweighted_recall(b[0], r, 4) for r, b, m in strata]
    assert result.difference == pytest.approx(np.mean(per_fold))
    pooled = [np.concatenate(part) for part in zip(*[(r, b[0], m[0]) for r, b, m in strata])]
    assert result.difference != pytest.approx(unweighted_recall(pooled[2], pooled[0], 4)
                                               - unweighted_recall(pooled[1], pooled[0], 4))
    assert (result.n_clips, result.n_seeds, result.n_folds) == (72, 1, 3)
    assert result.to_dict()["n_folds"] == 3
    # One fold is the seeds case: the same draws, the same numbers, written without n_folds.
    one = stratified_paired_ur_difference(strata[:1], 4, n_bootstrap=150, seed=3)
    same = paired_ur_difference(*strata[0], 4, n_bootstrap=150, seed=3)
    assert (one.difference, one.ci_low, one.ci_high) == (same.difference, same.ci_low, same.ci_high)
    assert "n_folds" not in same.to_dict() and same.n_folds is None
    with pytest.raises(ValueError, match="fold #1: 2 seeds, but fold #0 has 1"):
        stratified_paired_ur_difference([strata[0], (strata[1][0], strata[1][1] * 2, strata[1][2] * 2)], 4)
