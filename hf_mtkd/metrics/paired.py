"""Is a student better than the baseline, or is the difference noise? A paired bootstrap over the same test clips.

Two models scored on the same clips make errors on many of the same clips; comparing their separate confidence
intervals ignores that pairing and calls most differences "overlapping". The paired bootstrap resamples the *clips*
(with replacement) and recomputes both models' UR on each resample, so the interval is that of the difference.
Over several seeds (`seeds` in a pipeline) each resample is applied to every seed's predictions and the difference
is the mean over seeds: seed-to-seed variation of training and clip-sampling variation both widen the interval.

The verdict is read off the interval only: `better` when its lower end is above 0, `worse` when its upper end is
below 0, else `no detectable difference`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["BETTER", "NO_DIFFERENCE", "WORSE", "PairedDifference", "paired_ur_difference", "unweighted_recall"]

BETTER, WORSE, NO_DIFFERENCE = "better", "worse", "no detectable difference"


@dataclass(frozen=True)
class PairedDifference:
    """UR(method) - UR(baseline), as fractions, with its paired-bootstrap interval and the verdict it gives."""

    difference: float
    ci_low: float
    ci_high: float
    verdict: str
    n_clips: int
    n_seeds: int
    n_bootstrap: int
    confidence: float

    def to_dict(self) -> dict:
        return asdict(self)


def _weighted_ur(weights: np.ndarray, references: np.ndarray, correct: np.ndarray, num_labels: int) -> np.ndarray:
    """UR for each row of `weights` (resample counts per clip): per-class recall over the classes present in the
    resample, averaged. `correct` is 1 where the prediction is right."""
    onehot = np.eye(num_labels)[references]  # (clips, classes)
    totals = weights @ onehot  # (resamples, classes)
    hits = weights @ (onehot * correct[:, None])
    present = totals > 0
    recalls = np.divide(hits, totals, out=np.zeros_like(hits), where=present)
    return recalls.sum(axis=1) / present.sum(axis=1)


def unweighted_recall(predictions: Sequence[int], references: Sequence[int], num_labels: int) -> float:
    """UR over the classes present in `references` (the definition of `compute_ser_metrics`)."""
    references = np.asarray(references, dtype=int)
    correct = (np.asarray(predictions, dtype=int) == references).astype(float)
    return float(_weighted_ur(np.ones((1, len(references))), references, correct, num_labels)[0])


def paired_ur_difference(
    references: Sequence[int],
    baseline: Sequence[Sequence[int]],
    method: Sequence[Sequence[int]],
    num_labels: int,
    *,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedDifference:
    """The paired difference in UR between `method` and `baseline`, pooled over seeds.

    `baseline` and `method` hold one prediction array per seed (the same number of seeds, seed i of one paired
    with seed i of the other), each over the clips of `references`, in the same order. Each bootstrap resample
    draws clip indices once and applies them to every seed of both models."""
    references = np.asarray(references, dtype=int)
    if len(baseline) != len(method) or not baseline:
        raise ValueError(f"baseline and method need the same number of seeds (>= 1), got {len(baseline)} and "
                         f"{len(method)}.")
    for name, runs in (("baseline", baseline), ("method", method)):
        for index, predictions in enumerate(runs):
            if len(predictions) != len(references):
                raise ValueError(f"{name} seed #{index} has {len(predictions)} predictions for {len(references)} "
                                 f"clips.")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}.")
    n = len(references)
    correct_b = [(np.asarray(p, dtype=int) == references).astype(float) for p in baseline]
    correct_m = [(np.asarray(p, dtype=int) == references).astype(float) for p in method]

    def mean_difference(weights: np.ndarray) -> np.ndarray:
        return np.mean(
            [
                _weighted_ur(weights, references, m, num_labels) - _weighted_ur(weights, references, b, num_labels)
                for b, m in zip(correct_b, correct_m)
            ],
            axis=0,
        )

    point = float(mean_difference(np.ones((1, n)))[0])
    if n_bootstrap > 0:
        rng = np.random.default_rng(seed)
        draws = rng.integers(0, n, size=(n_bootstrap, n))
        weights = np.stack([np.bincount(row, minlength=n) for row in draws]).astype(float)
        samples = mean_difference(weights)
        alpha = (1 - confidence) / 2
        low, high = (float(v) for v in np.quantile(samples, [alpha, 1 - alpha]))
    else:
        low = high = point
    verdict = BETTER if low > 0 else WORSE if high < 0 else NO_DIFFERENCE
    return PairedDifference(point, low, high, verdict, n, len(baseline), n_bootstrap, confidence)
