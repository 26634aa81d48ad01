"""The classic floor: utterance statistics (MFCC or eGeMAPS) + scikit-learn logistic regression.

Pure functions on the splits the data layer prepares; every student's table shows this floor beside it.
"""

from .config import ClassicBaselineArguments
from .evaluation import evaluate_classic_baseline
from .features import FEATURE_SETS, MfccSettings, clip_features, egemaps_functionals, mfcc_statistics, split_features
from .model import (
    DEFAULT_C_GRID,
    ClassicBaseline,
    fit_classic_baseline,
    make_classifier,
    predict_labels,
    predict_log_probabilities,
    predict_probabilities,
)

__all__ = [
    "DEFAULT_C_GRID",
    "FEATURE_SETS",
    "ClassicBaseline",
    "ClassicBaselineArguments",
    "MfccSettings",
    "clip_features",
    "egemaps_functionals",
    "evaluate_classic_baseline",
    "fit_classic_baseline",
    "make_classifier",
    "mfcc_statistics",
    "predict_labels",
    "predict_log_probabilities",
    "predict_probabilities",
    "split_features",
]
