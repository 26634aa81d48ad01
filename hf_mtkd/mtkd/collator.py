"""Batches for MTKD: the student's inputs plus, per teacher with another front end, its own inputs
made from the same waveforms, and cached teacher logits when the dataset carries them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..data.collator import AudioClassificationCollator
from ..data.preprocessing import WAVEFORM
from ..distillation.cache import TEACHER_LOGITS
from ..distillation.teachers import own_feature_extractor_inputs


@dataclass
class MultiTeacherCollator(AudioClassificationCollator):
    teacher_feature_extractors: tuple = ()  # None where the teacher shares the student's inputs

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if self.random_crop:
            # Crop once here so that teachers and student hear the same window.
            rows = [{**row, WAVEFORM: self.crop(np.asarray(row[WAVEFORM]))} for row in rows]
        batch = super().__call__(rows)
        if rows and TEACHER_LOGITS in rows[0]:
            batch["teacher_logits"] = torch.as_tensor(np.stack([np.asarray(row[TEACHER_LOGITS]) for row in rows]))
        elif any(fe is not None for fe in self.teacher_feature_extractors):
            waveforms = [self.crop(np.asarray(row[WAVEFORM])) for row in rows]
            batch["teacher_inputs"] = own_feature_extractor_inputs(
                self.teacher_feature_extractors, waveforms, self.sampling_rate
            )
        return batch
