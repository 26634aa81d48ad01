# Copyright The hf_mtkd authors. Licensed under the Apache License, Version 2.0.
"""evaluate module for speech emotion recognition: UR, WR, F1s, confusion matrix, bootstrap CIs.

Load it with ``hf_mtkd.metrics.load_ser_metric()`` (or ``evaluate.load(<path of this file>)``).
The numbers come from ``hf_mtkd.metrics.compute.compute_ser_metrics``; this file only
adapts that function to evaluate's add/add_batch/compute protocol. Imports here must be
absolute: evaluate copies this file into its modules cache and treats a relative import as a
sibling file to copy along.
"""

import datasets
import evaluate

from hf_mtkd.metrics.compute import compute_ser_metrics


_DESCRIPTION = (
    "Speech emotion recognition metrics. UR (unweighted recall = UA = macro recall = balanced "
    "accuracy, averaged over the classes present in the references), WR (weighted recall = WA = "
    "accuracy), macro-F1, weighted-F1, per-class recall and the confusion matrix, overall and per "
    "language, with percentile-bootstrap confidence intervals for UR and WR. The result carries a "
    "'definitions' block that states each definition in words."
)

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted class ids (indexes into label_names).
    references (`list` of `int`): reference class ids.
    languages (`list` of `str`, *optional*): one language per sample; adds 'per_language'. With
        config_name="per_language" it is an input like predictions (add/add_batch take it).
    label_names (`list` of `str` or `dict` id -> name): class names in id order. Required here
        unless given to `evaluate.load(..., label_names=...)` / `load_ser_metric(label_names=...)`.
    n_bootstrap (`int`, defaults to 1000): bootstrap resamples for UR_ci / WR_ci; 0 disables them.
    confidence (`float`, defaults to 0.95): coverage of the percentile intervals.
    seed (`int`, defaults to 0): seed of the bootstrap.
Returns:
    dict: 'overall' (and 'per_language') blocks with n, UR, WR, macro_f1, weighted_f1,
    per_class_recall, confusion_matrix, UR_ci, WR_ci; plus 'definitions', 'label_names',
    'n_bootstrap', 'confidence', 'seed'. Values are fractions in [0, 1].
Examples:
    >>> from hf_mtkd.metrics import load_ser_metric
    >>> ser = load_ser_metric(label_names=["angry", "happy", "neutral", "sad"])
    >>> out = ser.compute(predictions=[0, 1, 2, 2], references=[0, 1, 2, 3])
    >>> out["overall"]["UR"], out["overall"]["WR"]
    (0.75, 0.75)
"""

_CITATION = ""

_CONFIGS = ("default", "per_language")


class SerMetric(evaluate.Metric):
    """SER metrics. ``config_name="per_language"`` makes ``languages`` an input column."""

    def __init__(self, *args, label_names=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.label_names = label_names

    def _info(self):
        if self.config_name not in _CONFIGS:
            raise ValueError(f"config_name must be one of {list(_CONFIGS)}, got {self.config_name!r}.")
        features = {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
        if self.config_name == "per_language":
            features["languages"] = datasets.Value("string")
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(features),
            format="numpy",
        )

    def _compute(
        self,
        predictions,
        references,
        languages=None,
        label_names=None,
        n_bootstrap=1000,
        confidence=0.95,
        seed=0,
    ):
        label_names = label_names if label_names is not None else self.label_names
        if label_names is None:
            raise ValueError(
                "SerMetric needs label_names: pass compute(..., label_names=[...]) or "
                "load_ser_metric(label_names=[...])."
            )
        return compute_ser_metrics(
            predictions,
            references,
            label_names,
            languages,
            n_bootstrap=n_bootstrap,
            confidence=confidence,
            seed=seed,
        )
