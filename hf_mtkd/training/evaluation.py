"""Validation metrics during training and the final per-language report."""

from __future__ import annotations

import logging
import os
from typing import Optional

import numpy as np
from transformers import EvalPrediction, Trainer

from ..data import DataReport
from ..metrics import compute_ser_metrics, format_metrics_table, save_metrics_json
from ..utils.atomic import write_json_atomic

logger = logging.getLogger(__name__)


def make_compute_metrics(label_names: list[str]):
    """compute_metrics for Trainer: overall UR, WR and F1s (no bootstrap: it runs every epoch)."""

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        results = compute_ser_metrics(np.argmax(logits, axis=-1), prediction.label_ids, label_names, n_bootstrap=0)
        overall = results["overall"]
        return {key: overall[key] for key in ("UR", "WR", "macro_f1", "weighted_f1")}

    return compute_metrics


def predict_scores(fitted, dataset) -> np.ndarray:
    """(len(dataset), num_labels) class scores from a Trainer (`predict`, a collective across processes) or
    from a `Predictor` of a method that fits on its own (`predict_scores`)."""
    if isinstance(fitted, Trainer):
        output = fitted.predict(dataset, metric_key_prefix="predict")
        return output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    scores = np.asarray(fitted.predict_scores(dataset))
    if scores.ndim != 2 or scores.shape[0] != len(dataset):
        raise ValueError(
            f"{type(fitted).__name__}.predict_scores returned shape {scores.shape} for {len(dataset)} rows; "
            "expected (rows, labels)."
        )
    return scores


def predict_labels(fitted, dataset) -> np.ndarray:
    return np.argmax(predict_scores(fitted, dataset), axis=-1)


def prediction_collapse_warning(
    predictions, label_names: list[str], split: str, min_share: float = 0.0
) -> Optional[str]:
    """A warning when the model predicts at most half of the classes on `split`: it has collapsed onto a few of
    them (UR can still look respectable: predicting 2 of 4 classes perfectly scores 50%). With `min_share`, a class
    predicted for a smaller share of the clips counts as never predicted (one stray neutral in 96 clips)."""
    values = np.asarray(predictions).ravel().astype(int)
    counts = np.bincount(values, minlength=len(label_names)) if values.size else np.zeros(len(label_names), int)
    predicted = [i for i, n in enumerate(counts) if n > 0 and n >= min_share * values.size]
    if len(label_names) < 2 or len(predicted) > len(label_names) / 2:
        return None
    never = [name for index, name in enumerate(label_names) if index not in predicted]
    rule = f" (a class predicted for under {min_share:.0%} of the clips counts as never)" if min_share else ""
    return (
        f"Prediction collapse on {split}: the model predicts only {len(predicted)} of {len(label_names)} classes "
        f"({', '.join(label_names[i] for i in predicted)}); it never predicts {', '.join(never)}{rule}."
    )


def report_split(
    fitted,
    dataset,
    label_names: list[str],
    *,
    split: str,
    language_column: Optional[str],
    n_bootstrap: int,
    seed: int,
    is_main_process: bool = True,
    output_dir: Optional[str] = None,
    title: Optional[str] = None,
    data_report: Optional[DataReport] = None,
    training_warnings: Optional[list[str]] = None,
) -> dict:
    """Predict `dataset`, compute overall and per-language metrics, save `<split>_metrics.json`, print the table.

    With `data_report`, the metrics also hold the data's warnings (`data_warnings`) and this split's
    `skipped_clips`, so that the metrics file says what the numbers were measured on; with
    `training_warnings`, what went wrong in training (`training_warnings`), to which a prediction collapse on this
    split is added (`prediction_collapse_warning`). What is returned is what the file holds.
    """
    predictions = predict_labels(fitted, dataset)
    collapse = prediction_collapse_warning(predictions, label_names, split)
    if collapse:
        if is_main_process:
            logger.warning(collapse)
        training_warnings = list(training_warnings or []) + [collapse]
    languages = dataset[language_column] if language_column and language_column in dataset.column_names else None
    results = compute_ser_metrics(
        predictions,
        np.asarray(dataset["labels"]),
        label_names,
        languages=languages,
        n_bootstrap=n_bootstrap,
        seed=seed,
    )
    if data_report is not None:
        results = {**results, "data_warnings": list(data_report.warnings),
                   "skipped_clips": data_report.skipped_count(split)}
    if training_warnings is not None:
        results = {**results, "training_warnings": list(training_warnings)}
    if output_dir and is_main_process:
        save_metrics_json(results, os.path.join(output_dir, f"{split}_metrics.json"))
        # Per clip, in the split's order: what a paired comparison of two models on the same clips needs.
        write_json_atomic({"label_names": list(label_names), "references": np.asarray(dataset["labels"]).tolist(),
                           "predictions": np.asarray(predictions).tolist()},
                          os.path.join(output_dir, f"{split}_predictions.json"), indent=None)
    if is_main_process:
        print(format_metrics_table(results, title=title or f"{split} ({len(dataset)} clips)"))
    return results
