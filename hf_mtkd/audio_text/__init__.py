"""Audio + text emotion recognition with logit and feature distillation into text-truncated students
(Nguyen et al., KD of 3M-SER; SPEC section 4).

Entry points: `fit_audio_text` (the method's fitting step: build, cache the teacher, two phases),
`prepare_audio_text_splits` (data with transcripts), `register_auto_classes` (Auto classes, AutoProcessor
and the "audio-text-classification" pipeline task), `predict_audio_text` (files + transcripts -> CSV/JSON).
"""

from .config import AudioTextDistillationConfig, AudioTextModelArguments
from .configuration import MODALITIES, POOLING_MODES, AudioTextConfig
from .losses import audio_text_kd_loss, masked_mse
from .modeling import AudioTextClassifierOutput, AudioTextForSequenceClassification, masked_pool
from .processing import AudioTextProcessor
from .registration import PIPELINE_TASK, AutoModelForAudioTextClassification, register_auto_classes
from .students import LAYER_SELECTIONS, make_student, select_text_layers
from .tokenizer import train_wordpiece_tokenizer

__all__ = [
    "LAYER_SELECTIONS",
    "MODALITIES",
    "PIPELINE_TASK",
    "POOLING_MODES",
    "AudioTextClassifierOutput",
    "AudioTextConfig",
    "AudioTextDistillationConfig",
    "AudioTextFitResult",
    "AudioTextForSequenceClassification",
    "AudioTextModelArguments",
    "AudioTextProcessor",
    "AutoModelForAudioTextClassification",
    "audio_text_kd_loss",
    "fit_audio_text",
    "make_student",
    "masked_mse",
    "masked_pool",
    "predict_audio_text",
    "prepare_audio_text_splits",
    "register_auto_classes",
    "select_text_layers",
    "train_wordpiece_tokenizer",
]

_LAZY = {
    "AudioTextFitResult": ".schedule",
    "fit_audio_text": ".schedule",
    "prepare_audio_text_splits": ".data",
    "predict_audio_text": ".predict",
}


def __getattr__(name):
    # The training and data entry points pull in datasets/Trainer machinery: load them on first use.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
