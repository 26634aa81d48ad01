"""Upstream features computed once per split through `datasets.map` and stored with the dataset.

The `input_features` column ((max_frames, N), or (L, max_frames, N) for the weighted layer sum) is written
under a fingerprint of the split's own fingerprint, the upstream (weights, config, layer, filterbank
settings), the feature extractor's preprocessing, the frame count, the input crop and the storage dtype: a
second run with the same upstream reads the datasets cache files back, a changed one recomputes.
Storage: 4 bytes x frames x width per clip and layer in float32 (HuBERT-large, 326 frames: 1.3 MB per clip;
`feature_dtype: float16` halves it; every layer for the weighted sum multiplies it by 25).
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from datasets import Array2D, Array3D, Dataset
from torch import nn

from ..data.collator import feature_extractor_inputs
from ..data.preprocessing import LABELS, WAVEFORM
from ..models.inverted_transformer.configuration_inverted_transformer import WaveformStudentConfig
from ..models.inverted_transformer.upstream import clip_features, upstream_fingerprint

INPUT_FEATURES = "input_features"
TEACHER_LOGITS = "teacher_logits"
TEACHER_FEATURES = "teacher_features"
FEATURE_DTYPES = ("float32", "float16")
_NUMERIC = (WAVEFORM, LABELS, INPUT_FEATURES, TEACHER_LOGITS, TEACHER_FEATURES)


def numeric_format(dataset: Dataset) -> Dataset:
    """numpy format for the array columns this method reads; the metadata columns stay Python values."""
    return dataset.with_format(
        "numpy", columns=[c for c in dataset.column_names if c in _NUMERIC], output_all_columns=True
    )


def check_waveform_feature_extractor(feature_extractor) -> None:
    if feature_extractor.model_input_names[0] != "input_values":
        raise ValueError(
            f"The upstream's feature extractor ({type(feature_extractor).__name__}) makes "
            f"{feature_extractor.model_input_names[0]!r}; the upstream must be a waveform encoder whose feature "
            f"extractor "
            "makes input_values (wav2vec2, HuBERT, WavLM, data2vec-audio, ...)."
        )


@torch.no_grad()
def features_of_waveform(upstream: nn.Module, config: WaveformStudentConfig, feature_extractor, waveform: np.ndarray,
                         device="cpu") -> torch.Tensor:
    """One clip's features as the exported model computes them: feature extractor, then `clip_features`."""
    inputs = feature_extractor_inputs(
        feature_extractor, [np.asarray(waveform, dtype=np.float32)], feature_extractor.sampling_rate
    )
    mask = inputs.get("attention_mask")
    return clip_features(
        upstream, config, inputs["input_values"][0].to(device), None if mask is None else mask[0].to(device)
    )


def add_upstream_features(
    dataset: Dataset,
    upstream: nn.Module,
    config: WaveformStudentConfig,
    feature_extractor,
    *,
    feature_dtype: str = "float32",
    device="cpu",
    batch_size: int = 32,
) -> Dataset:
    """`dataset` (with a `waveform` column at the feature extractor's rate) plus `input_features`."""
    if feature_dtype not in FEATURE_DTYPES:
        raise ValueError(f"feature_dtype must be one of {FEATURE_DTYPES}, got {feature_dtype!r}.")
    check_waveform_feature_extractor(feature_extractor)
    key = hashlib.sha256()
    key.update(dataset._fingerprint.encode())
    key.update(upstream_fingerprint(upstream, config, feature_extractor).encode())
    key.update(f"meta_curriculum features, dtype={feature_dtype}".encode())
    upstream.to(device).eval()

    def batch_features(batch):
        return {INPUT_FEATURES: [
            features_of_waveform(upstream, config, feature_extractor, w, device).cpu().numpy().astype(feature_dtype)
            for w in batch[WAVEFORM]
        ]}

    layers, frames, width = config.num_feature_layers, config.max_frames, config.feature_width
    features = dataset.features.copy()
    features[INPUT_FEATURES] = (Array2D(shape=(frames, width), dtype=feature_dtype) if layers == 1
                                else Array3D(shape=(layers, frames, width), dtype=feature_dtype))
    out = dataset.with_format(None).map(
        batch_features, batched=True, batch_size=batch_size, features=features, new_fingerprint=key.hexdigest()[:32],
        desc=f"Upstream features ({layers} x {frames} x {width})",
    )
    return numeric_format(out)


__all__ = [
    "FEATURE_DTYPES",
    "INPUT_FEATURES",
    "TEACHER_FEATURES",
    "TEACHER_LOGITS",
    "add_upstream_features",
    "features_of_waveform",
    "numeric_format",
]
