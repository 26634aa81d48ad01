"""The classic floor in the shared training flow (`method: classic_baseline`): utterance statistics of the
prepared splits, logistic regression with C chosen on validation UR, and the shared validation/test reports,
so that a multi-stage table shows the floor beside the students with the same metrics and intervals."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..arguments import ModelArguments
from ..data.preprocessing import LABELS
from ..registry import CardSection, MethodInfo, register_method
from ..training.method import RunSetup, SelfFittingMethod
from .config import ClassicBaselineArguments
from .export import export_ge2e_floor
from .features import MfccSettings, split_features
from .model import ClassicBaseline, fit_classic_baseline, predict_log_probabilities, save_classic_baseline

DESCRIPTION = (
    "The classic floor of speech emotion recognition: one vector of utterance statistics per clip (MFCC mean, "
    "standard deviation and delta standard deviation, the 88 eGeMAPS functionals, or the mean and standard deviation "
    "of a frozen pretrained GE2E voice encoder's window embeddings), standardised, then a "
    "multinomial logistic regression whose inverse regularisation C is chosen on validation UR."
)


@dataclass
class ClassicModelArguments(ModelArguments):
    """The model keys of a recipe: the floor has no neural model, so a pipeline's common student keys are
    accepted and ignored, and none are needed."""

    def __post_init__(self):
        if self.model_name_or_path is not None and self.model_type is not None:
            super().__post_init__()  # the shared error for both at once


@dataclass
class ClassicBaselinePredictor:
    """The fitted floor as the shared reports use it: `predict_scores(dataset)` = log-probabilities per row."""

    baseline: ClassicBaseline
    sampling_rate: int
    feature_set: str
    mfcc_settings: MfccSettings

    def predict_scores(self, dataset) -> np.ndarray:
        features = split_features(dataset, self.sampling_rate, self.feature_set, self.mfcc_settings)
        return predict_log_probabilities(self.baseline, features)


@register_method
class ClassicBaselineMethod(SelfFittingMethod):
    name = "classic_baseline"
    display_name = "Classic floor"
    extra_dataclasses = (ClassicBaselineArguments,)
    info = MethodInfo(
        display_name="classic floor (utterance statistics + logistic regression)",
        description=DESCRIPTION,
        tags=("classic-baseline", "logistic-regression", "mfcc", "egemaps", "ge2e"),
    )

    def __init__(self):
        self._baseline = None

    def dataclass_types(self) -> tuple:
        return (ClassicModelArguments, *super().dataclass_types()[1:])

    def _args(self, setup: RunSetup) -> ClassicBaselineArguments:
        (args,) = setup.extra_args
        return args

    def sampling_rate(self, setup: RunSetup) -> int:
        return self._args(setup).classic_sampling_rate

    def fit(self, setup: RunSetup, *, model, splits, resume_from_checkpoint=None):
        args = self._args(setup)
        rate = self.sampling_rate(setup)
        features = {
            name: split_features(splits[name], rate, args.classic_feature_set) for name in ("train", "validation")
        }
        self._baseline = fit_classic_baseline(
            features["train"], np.asarray(splits["train"][LABELS]), features["validation"],
            np.asarray(splits["validation"][LABELS]), list(setup.label_names),
            c_grid=[float(c) for c in args.classic_c_grid], class_weight=args.classic_class_weight,
            seed=setup.training_args.seed,
        )
        if setup.training_args.process_index == 0:
            save_classic_baseline(self._baseline, setup.training_args.output_dir, feature_set=args.classic_feature_set,
                                  sampling_rate=rate, mfcc_settings=asdict(MfccSettings()))
            if args.classic_feature_set == "ge2e":  # the pretrained floor is also a transformers model (export.py)
                export_ge2e_floor(self._baseline, setup.training_args.output_dir,
                                  window_seconds=setup.data_args.max_duration_seconds)
        return ClassicBaselinePredictor(self._baseline, rate, args.classic_feature_set, MfccSettings())

    def summary_extras(self, setup: RunSetup, fitted, *, splits) -> dict:
        return {
            "classic_baseline": {
                "feature_set": fitted.feature_set,
                "C": self._baseline.C,
                "validation_UR_per_C": {str(c): ur for c, ur in self._baseline.validation_ur.items()},
            }
        }

    def card_sections(self, setup: RunSetup, summary) -> list[CardSection]:
        extra = summary.get("classic_baseline") or {}
        tried = ", ".join(f"C={c}: {100 * ur:.1f}" for c, ur in (extra.get("validation_UR_per_C") or {}).items())
        body = (f"Features: `{extra.get('feature_set')}`. Validation UR (%) for each C tried: {tried}; kept C = "
                f"{extra.get('C')}, fitted on the training split alone. The weights are in `classic_baseline.json` "
                "(plain numbers; `hf_mtkd.classic_baseline.load_classic_baseline` rebuilds the classifier).")
        if extra.get("feature_set") == "ge2e":
            body += (" The same classifier is saved here as a transformers model, `GE2EForAudioClassification` with "
                     "the logistic regression (scaler folded in) as its linear layer, scoring whole clips: "
                     "`pipeline(\"audio-classification\", model=...)` after `import hf_mtkd`, or an MTKD teacher.")
        return [CardSection("Classic floor", body)]
