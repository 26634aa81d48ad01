"""The one rule that turns a whole clip into model inputs, shared by evaluation and `hf-mtkd predict`.

Training sees random windows of `train_window_seconds` (the collator's seeded crop); a whole clip is
scored by cutting it into windows of that same length, the last one ending at the end of the clip
(overlapping the one before), and averaging the logits of the windows. A clip no longer than one
window is one window of its own length: padded in a batch with an attention mask where the model has
one, never stretched. The window length travels in the saved model's config (`train_window_seconds`),
so inference uses what training used without flags.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

#: Attribute of the model config that holds the window length in seconds (None: whole clips).
CONFIG_KEY = "train_window_seconds"
#: Shorter windows are zero-padded to this (convolutional front ends need a few frames).
MIN_SECONDS = 0.1


@dataclass(frozen=True)
class WindowRule:
    """`window_samples` None: the whole clip is one window."""

    window_samples: Optional[int]
    min_samples: int = int(MIN_SECONDS * 16000)

    def __post_init__(self):
        if self.window_samples is not None and self.window_samples < 1:
            raise ValueError(f"window_samples must be >= 1 (or None for whole clips), got {self.window_samples}.")
        if self.min_samples < 0:
            raise ValueError(f"min_samples must be >= 0, got {self.min_samples}.")

    @classmethod
    def from_seconds(cls, window_seconds: Optional[float], sampling_rate: int) -> "WindowRule":
        if window_seconds is not None and window_seconds <= 0:
            raise ValueError(f"The window must be > 0 seconds (or None for whole clips), got {window_seconds}.")
        minimum = int(round(MIN_SECONDS * sampling_rate))
        if window_seconds is None:
            return cls(None, minimum)
        return cls(max(int(round(window_seconds * sampling_rate)), minimum), minimum)

    @classmethod
    def from_config(cls, config: Any, sampling_rate: int) -> Optional["WindowRule"]:
        """The rule a saved model was trained with; None when its config carries no window."""
        seconds = window_seconds_from_config(config)
        return None if seconds is None else cls.from_seconds(seconds, sampling_rate)

    def starts(self, num_samples: int) -> list[int]:
        """Window starts over a clip of `num_samples`: every window length, plus one aligned to the end."""
        size = self.window_samples
        if size is None or num_samples <= size:
            return [0]
        starts = list(range(0, num_samples - size + 1, size))
        if starts[-1] + size < num_samples:
            starts.append(num_samples - size)
        return starts

    def windows(self, waveform: np.ndarray) -> list[np.ndarray]:
        """The windows of one mono clip (a clip shorter than `min_samples` is zero-padded to it)."""
        waveform = np.asarray(waveform)
        if waveform.shape[-1] < self.min_samples:
            waveform = np.pad(waveform, (0, self.min_samples - waveform.shape[-1]))
        if self.window_samples is None:
            return [waveform]
        return [waveform[s : s + self.window_samples] for s in self.starts(waveform.shape[-1])]


def window_seconds_from_config(config: Any) -> Optional[float]:
    value = getattr(config, CONFIG_KEY, None)
    return None if value is None else float(value)


def save_window_to_config(config: Any, window_seconds: Optional[float]) -> None:
    """Record the training window in the model config (saved with the model, read by predict)."""
    if window_seconds is not None and window_seconds <= 0:
        raise ValueError(f"{CONFIG_KEY} must be > 0 or None, got {window_seconds}.")
    setattr(config, CONFIG_KEY, None if window_seconds is None else float(window_seconds))


def effective_window_seconds(train_window_seconds: Optional[float], max_duration_seconds: float) -> float:
    """What training really cuts: no window is longer than the audio kept per clip (None or 0: whole clips)."""
    if not train_window_seconds:
        return float(max_duration_seconds)
    return float(min(train_window_seconds, max_duration_seconds))


def average_by_clip(values: Any, clip_index: Sequence[int], num_clips: int) -> Any:
    """Mean over each clip's windows of (windows, ...) arrays, in clip order; tuples/lists are averaged item by item.

    Logits are averaged, not probabilities: one rule for every caller (a clip's windows vote with their evidence)."""
    if isinstance(values, (tuple, list)):
        return type(values)(average_by_clip(v, clip_index, num_clips) for v in values)
    array = np.asarray(values)
    index = np.asarray(clip_index, dtype=np.int64)
    if array.shape[0] != index.shape[0]:
        raise ValueError(f"{array.shape[0]} window outputs but {index.shape[0]} window clip indices.")
    counts = np.bincount(index, minlength=num_clips)
    if counts.shape[0] != num_clips or (counts == 0).any():
        raise ValueError(f"clip indices must cover 0..{num_clips - 1}, each at least once.")
    sums = np.zeros((num_clips, *array.shape[1:]), dtype=np.float64)
    np.add.at(sums, index, array)
    return (sums / counts.reshape(-1, *([1] * (array.ndim - 1)))).astype(
        array.dtype if array.dtype.kind == "f" else np.float64
    )
