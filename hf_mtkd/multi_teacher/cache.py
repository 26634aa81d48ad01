"""Teacher-logit cache: every teacher's logits over a split, computed once and stored with the dataset.

The logits become a `teacher_logits` column added by `datasets.map` under a fingerprint made
of the split's own fingerprint, each teacher's weights/labels/feature extractor and the
crop length, so a changed teacher or preprocessing rebuilds the cache and an unchanged one
is read back from the datasets cache files.
"""

from __future__ import annotations

import hashlib
import logging

import numpy as np
import torch
from datasets import Array2D, Dataset

from ..data.audio import resample
from ..data.collator import feature_extractor_inputs
from ..data.preprocessing import WAVEFORM
from .teachers import Teacher, teacher_fingerprint, teacher_logits_for_batch

logger = logging.getLogger(__name__)

TEACHER_LOGITS = "teacher_logits"


class CacheRefused(ValueError):
    """The cache would be wrong for this run (random crops or augmentation change the inputs each epoch)."""


def check_cache_allowed(random_windows: bool) -> None:
    if random_windows:
        raise CacheRefused(
            "use_teacher_logit_cache cannot be used with random_crop when clips may be longer than train_window_seconds: "
            "the teacher would have seen other audio than the student sees in each epoch. Set random_crop: false "
            "(the leading window every epoch), train_window_seconds >= max_duration_seconds, or compute teacher "
            "logits online."
        )


def add_teacher_logits(
    dataset: Dataset,
    teachers: list[Teacher],
    student_feature_extractor,
    *,
    max_samples: int,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
) -> Dataset:
    """Return `dataset` with a (N, K) float32 `teacher_logits` column."""
    key = hashlib.sha256()
    key.update(dataset._fingerprint.encode())
    for teacher in teachers:
        key.update(teacher_fingerprint(teacher).encode())
    key.update(f"max_samples={max_samples}".encode())
    fingerprint = key.hexdigest()[:32]
    num_labels = len(teachers[0].label_index)
    rate = student_feature_extractor.sampling_rate

    # Without an attention mask (wav2vec2-base style), zero padding changes a model's output, so
    # clips are then run one by one: the cache holds what each teacher says about the clip itself,
    # independent of which clips happened to share its batch.
    uses_mask = all(
        getattr(t.feature_extractor if not t.shares_student_inputs else student_feature_extractor, "return_attention_mask", False)
        for t in teachers
    )

    def logits_of(waveforms):
        student_inputs = feature_extractor_inputs(student_feature_extractor, waveforms, rate)
        own_inputs = [
            None
            if t.shares_student_inputs
            else feature_extractor_inputs(
                t.feature_extractor,
                [resample(w, rate, t.feature_extractor.sampling_rate) for w in waveforms],
                t.feature_extractor.sampling_rate,
            )
            for t in teachers
        ]
        logits = teacher_logits_for_batch(teachers, {k: v.to(device) for k, v in student_inputs.items()}, own_inputs)
        return logits.transpose(0, 1).cpu().numpy()  # (B, N, K)

    def batch_logits(batch):
        waveforms = [np.asarray(w)[:max_samples] for w in batch[WAVEFORM]]
        if uses_mask:
            return {TEACHER_LOGITS: logits_of(waveforms)}
        return {TEACHER_LOGITS: np.concatenate([logits_of([w]) for w in waveforms])}

    features = dataset.features.copy()
    features[TEACHER_LOGITS] = Array2D(shape=(len(teachers), num_labels), dtype="float32")
    formatted = dataset.with_format(None)
    out = formatted.map(
        batch_logits,
        batched=True,
        batch_size=batch_size,
        features=features,
        new_fingerprint=fingerprint,
        desc=f"Teacher-logit cache ({len(teachers)} teachers)",
    )
    return out.with_format("numpy", columns=[c for c in ("waveform", "labels", TEACHER_LOGITS)], output_all_columns=True)

