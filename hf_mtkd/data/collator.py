"""Batching: each model's own feature extractor turns the shared waveforms into its inputs."""

from __future__ import annotations

import inspect
import zlib
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import torch

from .preprocessing import LABELS, WAVEFORM


def feature_extractor_inputs(
    feature_extractor, waveforms: list[np.ndarray], sampling_rate: int
) -> dict[str, torch.Tensor]:
    """Run a feature extractor on a batch the way its model expects.

    Raw-waveform extractors (wav2vec2 family) pad to the longest clip and return an
    attention mask only when the extractor says so (wav2vec2-base must not get one: its
    group-norm feature encoder was trained on zero-padded batches without a mask).
    Spectrogram extractors (AST, Whisper) keep their own fixed-length padding.
    """
    kwargs: dict[str, Any] = {"sampling_rate": sampling_rate, "return_tensors": "pt"}
    params = inspect.signature(feature_extractor.__call__).parameters
    if "padding" in params and feature_extractor.model_input_names[0] == "input_values":
        kwargs["padding"] = "longest"
    if "return_attention_mask" in params:
        kwargs["return_attention_mask"] = bool(getattr(feature_extractor, "return_attention_mask", False))
    encoded = feature_extractor([np.asarray(w, dtype=np.float32) for w in waveforms], **kwargs)
    keep = [name for name in feature_extractor.model_input_names if name in encoded]
    if "attention_mask" in keep and not kwargs.get("return_attention_mask", True):
        keep.remove("attention_mask")
    return {name: encoded[name] for name in keep}


@dataclass
class AudioClassificationCollator:
    """Collate rows holding `waveform` and `labels` into model inputs.

    `language_to_id` adds a `language_id` tensor (used by language-aware distillation);
    `max_samples` with `random_crop` crops each training clip at a random offset drawn from
    (seed, epoch, the clip's content), not from a running generator, so that a run resumed from a
    checkpoint mid-epoch crops exactly as the uninterrupted run did. The trainer calls `set_epoch`
    at each epoch start (workers made with `persistent_workers` keep the epoch they started with).
    """

    feature_extractor: Any
    sampling_rate: int
    language_column: Optional[str] = None
    language_to_id: Optional[dict[str, int]] = None
    max_samples: Optional[int] = None
    random_crop: bool = False
    seed: int = 0
    epoch: int = field(default=0, repr=False)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def crop(self, waveform: np.ndarray) -> np.ndarray:
        if self.max_samples is None or len(waveform) <= self.max_samples:
            return waveform
        start = 0
        if self.random_crop:
            clip_key = zlib.crc32(np.ascontiguousarray(waveform).tobytes())
            rng = np.random.default_rng([self.seed % (1 << 64), self.epoch, clip_key, len(waveform)])
            start = int(rng.integers(0, len(waveform) - self.max_samples + 1))
        return waveform[start : start + self.max_samples]

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        waveforms = [self.crop(np.asarray(row[WAVEFORM])) for row in rows]
        batch = feature_extractor_inputs(self.feature_extractor, waveforms, self.sampling_rate)
        batch["labels"] = torch.tensor([int(row[LABELS]) for row in rows], dtype=torch.long)
        if self.language_to_id is not None:
            batch["language_id"] = torch.tensor(
                [self.language_to_id.get(row[self.language_column], -1) for row in rows], dtype=torch.long
            )
        return batch
