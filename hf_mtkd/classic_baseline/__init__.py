"""The classic floor: utterance statistics (MFCC or eGeMAPS) + scikit-learn logistic regression, as pure
functions on the prepared splits and as `method: classic_baseline`. The names below import on first use."""

from ..utils.lazy import lazy_exports

_EXPORTS = {
    "ClassicBaselineArguments": ".config",
    "FEATURE_SETS": ".features",
    "MfccSettings": ".features",
    "clip_features": ".features",
    "egemaps_functionals": ".features",
    "mfcc_statistics": ".features",
    "split_features": ".features",
    "DEFAULT_C_GRID": ".model",
    "ClassicBaseline": ".model",
    "fit_classic_baseline": ".model",
    "load_classic_baseline": ".model",
    "make_classifier": ".model",
    "predict_labels": ".model",
    "predict_log_probabilities": ".model",
    "save_classic_baseline": ".model",
    "export_ge2e_floor": ".export",
    "linear_weights": ".export",
    "ClassicBaselineMethod": ".method",
    "ClassicBaselinePredictor": ".method",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
