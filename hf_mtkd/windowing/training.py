"""The training side of the window rule: how long each training clip is, for batching by length."""

from __future__ import annotations

import hashlib
from typing import Optional

import numpy as np
from datasets import Dataset

from ..data.preprocessing import WAVEFORM


def add_length_column(dataset: Dataset, window_samples: Optional[int], name: str = "length") -> Dataset:
    """Add each clip's training length in samples (the clip, or the window when the clip is longer), which
    `train_sampling_strategy: group_by_length` reads (`length_column_name`): batches of similar lengths
    carry little padding, which matters for models without an attention mask (wav2vec2-base)."""
    if name in dataset.column_names:
        return dataset
    key = hashlib.sha256(f"{dataset._fingerprint}|{name}|{window_samples}".encode()).hexdigest()[:32]
    cap = np.iinfo(np.int64).max if window_samples is None else int(window_samples)
    fmt = dataset.format
    out = dataset.with_format("numpy", columns=[WAVEFORM]).map(
        lambda batch: {name: [min(len(w), cap) for w in batch[WAVEFORM]]},
        batched=True, batch_size=256, new_fingerprint=key, desc="Clip lengths for group_by_length",
    )
    return out.with_format(fmt["type"], columns=fmt["columns"], output_all_columns=fmt["output_all_columns"],
                           **fmt["format_kwargs"])


def random_training_windows(data_args) -> bool:
    """Whether training windows can differ between epochs (random offsets in clips longer than the window)."""
    window = data_args.train_window_seconds
    return bool(data_args.random_crop) and bool(window) and window < data_args.max_duration_seconds
