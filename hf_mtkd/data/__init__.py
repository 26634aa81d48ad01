"""Audio data layer: sources, labels, splits, decoding and batching."""

from .audio import AudioDecodeError, TruncatedAudioWarning, decode_audio
from .collator import AudioClassificationCollator, feature_extractor_inputs
from .labels import select_labels
from .prepare import PreparedData, prepare_data
from .preprocessing import LABELS, WAVEFORM, prepare_audio_dataset
from .report import DataReport
from .sources import load_raw_dataset
from .splits import make_splits

__all__ = [
    "AudioClassificationCollator",
    "AudioDecodeError",
    "DataReport",
    "LABELS",
    "PreparedData",
    "TruncatedAudioWarning",
    "WAVEFORM",
    "decode_audio",
    "feature_extractor_inputs",
    "load_raw_dataset",
    "make_splits",
    "prepare_data",
    "prepare_audio_dataset",
    "select_labels",
]
