"""Whole-clip evaluation through the Trainer: each clip becomes its windows (the rule in rule.py), the
Trainer predicts the windows, and the logits are averaged back per clip before any metric is taken."""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
from datasets import Dataset, Value
from torch.utils.data import SequentialSampler
from transformers import EvalPrediction
from transformers.trainer_utils import PredictionOutput

from ..data.preprocessing import LABELS, WAVEFORM
from .rule import WindowRule, average_by_clip


CLIP_INDEX = "clip_index"
WINDOW_LENGTH = "window_length"


@dataclass
class WindowedSplit:
    """A split cut into windows: `dataset` has one row per window (its clip's other columns repeated, plus
    `clip_index` and `window_length`), ordered by window length so that batches carry little padding."""

    dataset: Dataset
    clip_index: np.ndarray
    num_clips: int
    clip_labels: Optional[np.ndarray]  # None for a split without labels

    def clip_outputs(self, window_outputs: Any) -> Any:
        """Average window outputs (logits, or a tuple of them) per clip, in the split's row order."""
        return average_by_clip(window_outputs, self.clip_index, self.num_clips)


def window_split(dataset: Dataset, rule: WindowRule) -> WindowedSplit:
    """Cut every clip of a prepared split (a `waveform` column) into the rule's windows."""
    if WAVEFORM not in dataset.column_names:
        raise ValueError(f"Windowed evaluation needs a {WAVEFORM!r} column; the split has {dataset.column_names}.")
    key = hashlib.sha256(f"{dataset._fingerprint}|{rule}".encode()).hexdigest()[:32]
    features = dataset.features.copy()
    features[CLIP_INDEX] = Value("int64")
    features[WINDOW_LENGTH] = Value("int64")

    def explode(batch, indices):
        out: dict[str, list] = {name: [] for name in features}
        columns = [name for name in batch if name != WAVEFORM]
        for row, clip in enumerate(indices):
            for window in rule.windows(np.asarray(batch[WAVEFORM][row], dtype=np.float32)):
                out[WAVEFORM].append(window)
                out[CLIP_INDEX].append(clip)
                out[WINDOW_LENGTH].append(int(window.shape[-1]))
                for name in columns:
                    out[name].append(batch[name][row])
        return out

    numpy_view = dataset.with_format("numpy", columns=[WAVEFORM], output_all_columns=True)
    windows = numpy_view.map(
        explode, batched=True, batch_size=64, with_indices=True, features=features, new_fingerprint=key,
        desc="Cutting clips into windows",
    )
    # Longest first (a too-large batch fails at once); equal lengths together (little padding in a batch).
    lengths = np.asarray(windows.with_format(None)[WINDOW_LENGTH])
    windows = windows.select(np.argsort(-lengths, kind="stable"))
    fmt = dataset.format
    windows = windows.with_format(fmt["type"], columns=fmt["columns"], output_all_columns=fmt["output_all_columns"],
                                  **fmt["format_kwargs"])
    return WindowedSplit(
        dataset=windows,
        clip_index=np.asarray(windows.with_format(None)[CLIP_INDEX], dtype=np.int64),
        num_clips=len(dataset),
        clip_labels=np.asarray(dataset.with_format(None)[LABELS]) if LABELS in dataset.column_names else None,
    )


class WindowedEvaluationMixin:
    """For Trainer subclasses: `evaluate` and `predict` score whole clips by the window rule recorded in the
    model's config (`train_window_seconds`); without one they behave as the stock Trainer's.

    `predict` returns one row of averaged logits per clip of the dataset given, in its order, and
    `compute_metrics` sees clip-level predictions and labels in both."""

    def window_rule(self) -> Optional[WindowRule]:
        model = self.accelerator.unwrap_model(self.model) if hasattr(self, "accelerator") else self.model
        collator = getattr(self, "eval_data_collator", None) or self.data_collator
        rate = getattr(collator, "sampling_rate", None) or getattr(self.processing_class, "sampling_rate", None)
        if rate is None:
            return None
        return WindowRule.from_config(model.config, int(rate))

    def windowed(self, dataset) -> Optional[WindowedSplit]:
        rule = self.window_rule()
        if rule is None or not isinstance(dataset, Dataset) or WAVEFORM not in dataset.column_names:
            return None
        cache = self.__dict__.setdefault("_windowed_splits", {})
        key = (dataset._fingerprint, rule)
        if key not in cache:
            cache[key] = window_split(dataset, rule)
        return cache[key]

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
        dataset = self.eval_dataset if eval_dataset is None else eval_dataset
        windows = None if isinstance(dataset, dict) else self.windowed(dataset)  # a dict comes back here per entry
        if windows is None:
            return super().evaluate(eval_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)
        with _clip_level_metrics(self, windows):
            return super().evaluate(windows.dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)

    def predict(self, test_dataset, ignore_keys=None, metric_key_prefix: str = "test"):
        windows = self.windowed(test_dataset)
        if windows is None:
            return super().predict(test_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)
        with _clip_level_metrics(self, windows):
            output = super().predict(windows.dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)
        return PredictionOutput(predictions=windows.clip_outputs(output.predictions), label_ids=windows.clip_labels,
                                metrics=output.metrics)

    def _get_eval_sampler(self, eval_dataset):
        # Predictions must come back in dataset order (windows map to clips by position; reports pair predictions
        # with rows). transformers shuffles evaluation batches when train_sampling_strategy is group_by_length.
        if self.args.world_size <= 1:
            return SequentialSampler(eval_dataset)
        return None


@contextmanager
def _clip_level_metrics(trainer, windows: WindowedSplit):
    """Swap the trainer's compute_metrics for one that averages window outputs per clip first."""
    original = trainer.compute_metrics
    if original is not None:
        def compute_metrics(prediction: EvalPrediction):
            return original(EvalPrediction(predictions=windows.clip_outputs(prediction.predictions),
                                           label_ids=windows.clip_labels))

        trainer.compute_metrics = compute_metrics
    try:
        yield
    finally:
        trainer.compute_metrics = original
