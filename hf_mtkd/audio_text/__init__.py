"""Audio + text emotion recognition with logit and feature distillation into text-truncated students
(Nguyen et al., KD of 3M-SER; SPEC section 4). `method: audio_text` in a recipe.

`AudioTextConfig` is registered with `AutoConfig` by `import hf_mtkd` (see `hf_mtkd.auto_classes`); the first
config of this type registers the model, `AutoProcessor` and the "audio-text-classification" pipeline task
(`registration.py`). The names below import on first use.
"""

from ..utils.lazy import lazy_exports

_EXPORTS = {
    "AudioTextDistillationConfig": ".config",
    "AudioTextModelArguments": ".config",
    "MODALITIES": ".configuration_audio_text",
    "POOLING_MODES": ".configuration_audio_text",
    "AudioTextConfig": ".configuration_audio_text",
    "audio_text_kd_loss": ".losses",
    "masked_mse": ".losses",
    "AudioTextClassifierOutput": ".modeling_audio_text",
    "AudioTextForSequenceClassification": ".modeling_audio_text",
    "masked_pool": ".modeling_audio_text",
    "AudioTextProcessor": ".processing_audio_text",
    "AudioTextClassificationPipeline": ".pipeline",
    "PIPELINE_TASK": ".registration",
    "register_auto_classes": ".registration",
    "LAYER_SELECTIONS": ".students",
    "make_student": ".students",
    "select_text_layers": ".students",
    "train_wordpiece_tokenizer": ".tokenizer",
    "AudioTextDistillationTrainer": ".trainer",
    "AudioTextCollator": ".data",
    "AudioTextFitResult": ".schedule",
    "fit_audio_text": ".schedule",
    "predict_audio_text": ".predict",
    "AudioTextMethod": ".method",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
