"""Is a student better than the baseline, or is the difference noise? A paired bootstrap over the same test clips.

Two models scored on the same clips make errors on many of the same clips; comparing their separate confidence
intervals ignores that pairing and calls most differences "overlapping". The paired bootstrap resamples the *clips*
(with replacement) and recomputes both models' UR on each resample, so the interval is that of the difference.
Over several seeds (`seeds` in a pipeline) each resample is applied to every seed's predictions and the difference
is the mean over seeds: seed-to-seed variation of training and clip-sampling variation both widen the interval.
Over folds (`folds` in a pipeline: each clip is tested in exactly one fold) the clips of each fold are resampled
within that fold, and the difference is the mean over folds of each fold's difference: the difference of the
models' mean-over-folds UR, the number the fold table shows (`stratified_paired_ur_difference`).

The verdict is read off the interval only: `better` when its lower end is above 0, `worse` when its upper end is
below 0, else `no detectable difference`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np

__all__ = ["BETTER", "NO_DIFFERENCE", "WORSE", "PairedDifference", "Stratum", "paired_ur_difference",
           "stratified_paired_ur_difference", "unweighted_recall"]

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
    #: Folds the clips were resampled within (None: one set of clips, every seed tested on all of it).
    n_folds: Optional[int] = None

    def to_dict(self) -> dict:
        data = asdict(self)
        if self.n_folds is None:  # a seeds-only verdict is written as before folds existed
            del data["n_folds"]
        return data


#: One fold's test clips: (references, baseline's predictions per seed, method's predictions per seed).
Stratum = tuple[Sequence[int], Sequence[Sequence[int]], Sequence[Sequence[int]]]


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
    return _paired([(references, baseline, method)], num_labels, n_bootstrap, confidence, seed, n_folds=None)


def stratified_paired_ur_difference(
    strata: Sequence[Stratum],
    num_labels: int,
    *,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedDifference:
    """The paired difference in UR between two models over folds: the mean over folds of each fold's difference.

    Each stratum is one fold's test clips, as `paired_ur_difference` takes them (references, then the baseline's
    and the method's predictions, one array per seed; every fold the same number of seeds). Each bootstrap
    resample draws clip indices within every fold, so that each fold keeps its size, as in the design; the
    interval thus covers the clip sampling of every fold's test set."""
    if not strata:
        raise ValueError("No folds to compare.")
    return _paired(strata, num_labels, n_bootstrap, confidence, seed, n_folds=len(strata))


def _paired(strata: Sequence[Stratum], num_labels: int, n_bootstrap: int, confidence: float, seed: int,
            n_folds: Optional[int]) -> PairedDifference:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}.")
    parts = []  # per stratum: references and each seed's 1/0 correctness, baseline's and method's
    for index, (references, baseline, method) in enumerate(strata):
        where = "" if n_folds is None else f"fold #{index}: "
        references = np.asarray(references, dtype=int)
        if len(baseline) != len(method) or not baseline:
            raise ValueError(f"{where}baseline and method need the same number of seeds (>= 1), got {len(baseline)} "
                             f"and {len(method)}.")
        if len(baseline) != len(strata[0][1]):
            raise ValueError(f"{where}{len(baseline)} seeds, but fold #0 has {len(strata[0][1])}: every fold needs "
                             "the same seeds.")
        for name, runs in (("baseline", baseline), ("method", method)):
            for run, predictions in enumerate(runs):
                if len(predictions) != len(references):
                    raise ValueError(f"{where}{name} seed #{run} has {len(predictions)} predictions for "
                                     f"{len(references)} clips.")
        parts.append((references, [(np.asarray(p, dtype=int) == references).astype(float) for p in baseline],
                      [(np.asarray(p, dtype=int) == references).astype(float) for p in method]))

    def mean_difference(weights: Sequence[np.ndarray]) -> np.ndarray:
        """Per resample: the mean over strata of the mean over seeds of UR(method) - UR(baseline)."""
        return np.mean([
            np.mean([_weighted_ur(w, references, m, num_labels) - _weighted_ur(w, references, b, num_labels)
                     for b, m in zip(correct_b, correct_m)], axis=0)
            for w, (references, correct_b, correct_m) in zip(weights, parts)
        ], axis=0)

    point = float(mean_difference([np.ones((1, len(references))) for references, _, _ in parts])[0])
    if n_bootstrap > 0:
        rng = np.random.default_rng(seed)
        weights = []
        for references, _, _ in parts:  # one draw per stratum, in order (one stratum: the draws of a seeds run)
            n = len(references)
            draws = rng.integers(0, n, size=(n_bootstrap, n))
            weights.append(np.stack([np.bincount(row, minlength=n) for row in draws]).astype(float))
        samples = mean_difference(weights)
        alpha = (1 - confidence) / 2
        low, high = (float(v) for v in np.quantile(samples, [alpha, 1 - alpha]))
    else:
        low = high = point
    verdict = BETTER if low > 0 else WORSE if high < 0 else NO_DIFFERENCE
    n_clips = sum(len(references) for references, _, _ in parts)
    return PairedDifference(point, low, high, verdict, n_clips, len(strata[0][1]), n_bootstrap, confidence, n_folds)
