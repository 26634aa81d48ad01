"""The classic floor end to end on prepared splits: features, C on validation, metrics with CIs on validation and test."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..data.preprocessing import LABELS
from ..metrics import compute_ser_metrics
from .features import MfccSettings, split_features
from .model import DEFAULT_C_GRID, fit_classic_baseline, predict_labels


def evaluate_classic_baseline(
    splits,
    label_names: Sequence[str],
    sampling_rate: int,
    *,
    feature_set: str = "mfcc",
    c_grid: Sequence[float] = DEFAULT_C_GRID,
    class_weight: Optional[str] = "balanced",
    language_column: Optional[str] = "language",
    n_bootstrap: int = 1000,
    seed: int = 0,
    mfcc_settings: MfccSettings = MfccSettings(),
) -> dict:
    """`splits`: the train/validation/test splits `hf_mtkd.data.prepare_data(...).splits` holds (a `waveform` and a
    `labels` column each). Returns {"C", "validation_UR_per_C", "validation": metrics, "test": metrics}, the
    metrics as `compute_ser_metrics` makes them (overall and per language, bootstrap CIs)."""
    for name in ("train", "validation", "test"):
        if name not in splits:
            raise ValueError(f"The classic baseline needs a {name!r} split; got {sorted(splits)}.")
    features = {name: split_features(splits[name], sampling_rate, feature_set, mfcc_settings)
                for name in ("train", "validation", "test")}
    labels = {name: np.asarray(splits[name][LABELS]) for name in features}
    baseline = fit_classic_baseline(
        features["train"], labels["train"], features["validation"], labels["validation"], label_names,
        c_grid=c_grid, class_weight=class_weight, seed=seed,
    )
    out = {"C": baseline.C, "validation_UR_per_C": baseline.validation_ur, "feature_set": feature_set}
    for name in ("validation", "test"):
        ds = splits[name]
        languages = list(ds[language_column]) if language_column and language_column in ds.column_names else None
        out[name] = compute_ser_metrics(predict_labels(baseline, features[name]), labels[name], list(label_names),
                                        languages=languages, n_bootstrap=n_bootstrap, seed=seed)
    return out
