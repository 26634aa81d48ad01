"""Whole utterances: one windowing rule for training crops, evaluation and `hf-mtkd predict`."""

from .evaluation import CLIP_INDEX, WINDOW_LENGTH, WindowedEvaluationMixin, WindowedSplit, window_split
from .rule import (
    CONFIG_KEY,
    MIN_SECONDS,
    WindowRule,
    average_by_clip,
    effective_window_seconds,
    save_window_to_config,
    window_seconds_from_config,
)
from .training import add_length_column, random_training_windows

__all__ = [
    "CLIP_INDEX",
    "CONFIG_KEY",
    "MIN_SECONDS",
    "WINDOW_LENGTH",
    "WindowRule",
    "WindowedEvaluationMixin",
    "WindowedSplit",
    "add_length_column",
    "average_by_clip",
    "effective_window_seconds",
    "random_training_windows",
    "save_window_to_config",
    "window_seconds_from_config",
    "window_split",
]
