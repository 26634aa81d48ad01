"""Predictions from a saved student: files or folders in, per-file emotion scores (CSV or JSON) out."""

from .predict import (
    AUDIO_EXTENSIONS,
    FALLBACK_CHUNK_SECONDS,
    MODEL_WINDOW,
    EmotionPredictor,
    Prediction,
    collect_audio_files,
    predict_files,
    write_predictions,
)

__all__ = [
    "AUDIO_EXTENSIONS",
    "FALLBACK_CHUNK_SECONDS",
    "MODEL_WINDOW",
    "EmotionPredictor",
    "Prediction",
    "collect_audio_files",
    "predict_files",
    "write_predictions",
]
