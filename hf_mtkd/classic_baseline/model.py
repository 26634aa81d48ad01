"""The classic floor's classifier: StandardScaler + multinomial logistic regression, C chosen on validation UR."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from ..metrics import compute_ser_metrics
from ..utils.atomic import write_json_atomic

DEFAULT_C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)


@dataclass
class ClassicBaseline:
    """A fitted floor: the sklearn pipeline, the C it was refitted with, and validation UR for every C tried."""

    pipeline: Pipeline
    C: float
    validation_ur: dict[float, float] = field(default_factory=dict)
    label_names: list[str] = field(default_factory=list)


def make_classifier(C: float, class_weight: str | None = "balanced", max_iter: int = 5000, seed: int = 0) -> Pipeline:
    # class_weight "balanced": the target metric is UR, the mean of per-class recalls.
    return make_pipeline(
        StandardScaler(),
        LogisticRegression(C=C, class_weight=class_weight, max_iter=max_iter, random_state=seed),
    )


def fit_classic_baseline(
    train_features: np.ndarray,
    train_labels: Sequence[int],
    validation_features: np.ndarray,
    validation_labels: Sequence[int],
    label_names: Sequence[str],
    *,
    c_grid: Sequence[float] = DEFAULT_C_GRID,
    class_weight: str | None = "balanced",
    seed: int = 0,
) -> ClassicBaseline:
    """Fit one classifier per C on train, keep the C with the best validation UR (ties: the smallest C).

    The kept classifier is the one fitted on train alone: validation only selects C (as for every student).
    """
    if not c_grid or any(c <= 0 for c in c_grid):
        raise ValueError(f"c_grid must be a non-empty list of positive numbers, got {list(c_grid)}.")
    train_features, validation_features = _check(train_features, train_labels, "train"), _check(
        validation_features, validation_labels, "validation")
    if train_features.shape[1] != validation_features.shape[1]:
        raise ValueError(f"train has {train_features.shape[1]} features per clip, validation "
                         f"{validation_features.shape[1]}.")
    present = sorted(set(np.asarray(train_labels).tolist()))
    if len(present) < 2:
        raise ValueError(f"train holds a single class ({present}); a classifier needs at least two.")
    best = None
    scores: dict[float, float] = {}
    for C in sorted(c_grid):
        classifier = make_classifier(C, class_weight=class_weight, seed=seed).fit(
            train_features, np.asarray(train_labels)
        )
        predicted = predict_labels_with(classifier, validation_features, len(label_names))
        ur = compute_ser_metrics(predicted, np.asarray(validation_labels), list(label_names), n_bootstrap=0)[
            "overall"
        ]["UR"]
        scores[float(C)] = float(ur)
        if best is None or ur > scores[best[0]]:
            best = (float(C), classifier)
    return ClassicBaseline(pipeline=best[1], C=best[0], validation_ur=scores, label_names=list(label_names))


def predict_log_probabilities(baseline: ClassicBaseline, features: np.ndarray) -> np.ndarray:
    """(N, K) log-probabilities in label order (the floor's "logits"); a class absent from train gets -inf."""
    return _log_probabilities(baseline.pipeline, np.asarray(features, dtype=np.float64), len(baseline.label_names))


def predict_labels(baseline: ClassicBaseline, features: np.ndarray) -> np.ndarray:
    return np.argmax(predict_log_probabilities(baseline, features), axis=-1)


def predict_labels_with(classifier: Pipeline, features: np.ndarray, num_labels: int) -> np.ndarray:
    return np.argmax(_log_probabilities(classifier, features, num_labels), axis=-1)


def _log_probabilities(classifier: Pipeline, features: np.ndarray, num_labels: int) -> np.ndarray:
    # sklearn orders columns by the classes seen in training; place them at their label ids.
    out = np.full((features.shape[0], num_labels), -np.inf)
    with np.errstate(divide="ignore"):
        out[:, classifier.classes_] = classifier.predict_log_proba(features)
    return out


def _check(features, labels, split: str) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] == 0:
        raise ValueError(f"{split} features must be a non-empty (N, D) array, got shape {features.shape}.")
    if features.shape[0] != len(labels):
        raise ValueError(f"{split}: {features.shape[0]} feature rows but {len(labels)} labels.")
    if not np.isfinite(features).all():
        raise ValueError(f"{split} features contain NaN or infinite values.")
    return features


SAVED_FILE = "classic_baseline.json"


def save_classic_baseline(baseline: ClassicBaseline, output_dir: str, **extra) -> str:
    """Write the fitted floor as plain numbers (scaler, weights, classes, C; plus `extra`, e.g. the feature
    settings) to `<output_dir>/classic_baseline.json`: readable, and loadable without unpickling anything."""
    scaler, classifier = (
        baseline.pipeline.named_steps["standardscaler"],
        baseline.pipeline.named_steps["logisticregression"],
    )
    state = {
        "label_names": baseline.label_names,
        "C": baseline.C,
        "validation_ur": {str(c): ur for c, ur in baseline.validation_ur.items()},
        "scaler_mean": scaler.mean_.tolist(),
        "scaler_scale": scaler.scale_.tolist(),
        "classes": classifier.classes_.tolist(),
        "coef": classifier.coef_.tolist(),
        "intercept": classifier.intercept_.tolist(),
        "class_weight": classifier.class_weight,
        **extra,
    }
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, SAVED_FILE)
    write_json_atomic(state, path)
    return path


def load_classic_baseline(output_dir: str) -> tuple[ClassicBaseline, dict]:
    """The floor `save_classic_baseline` wrote, and the file's other keys (the feature settings)."""
    path = os.path.join(output_dir, SAVED_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No classic baseline in {output_dir!r} ({SAVED_FILE} is missing).")
    with open(path, encoding="utf-8") as handle:
        state = json.load(handle)
    pipeline = make_classifier(state["C"], class_weight=state.get("class_weight"))
    scaler, classifier = pipeline.named_steps["standardscaler"], pipeline.named_steps["logisticregression"]
    # A fitted scaler and classifier are these arrays and nothing else (what predict_log_proba reads).
    scaler.mean_ = np.asarray(state["scaler_mean"])
    scaler.scale_ = np.asarray(state["scaler_scale"])
    scaler.var_ = scaler.scale_ ** 2
    scaler.n_features_in_ = scaler.mean_.shape[0]
    scaler.n_samples_seen_ = 0
    classifier.classes_ = np.asarray(state["classes"])
    classifier.coef_ = np.asarray(state["coef"])
    classifier.intercept_ = np.asarray(state["intercept"])
    classifier.n_features_in_ = classifier.coef_.shape[1]
    keys = {
        "label_names",
        "C",
        "validation_ur",
        "scaler_mean",
        "scaler_scale",
        "classes",
        "coef",
        "intercept",
        "class_weight",
    }
    baseline = ClassicBaseline(pipeline=pipeline, C=float(state["C"]), label_names=list(state["label_names"]),
                               validation_ur={float(c): ur for c, ur in state["validation_ur"].items()})
    return baseline, {k: v for k, v in state.items() if k not in keys}
