"""Audio + text emotion recognition with logit and feature distillation into text-truncated students
(Nguyen et al., KD of 3M-SER; SPEC section 4). `method: audio_text` in a recipe.

The model it trains, with its processor, tokenizer and pipeline task, lives in `hf_mtkd.models.audio_text`. The
names below import on first use.
"""

from ..utils.lazy import lazy_exports

_EXPORTS = {
    "AudioTextDistillationConfig": ".config",
    "AudioTextModelArguments": ".config",
    "audio_text_kd_loss": ".losses",
    "masked_mse": ".losses",
    "LAYER_SELECTIONS": ".students",
    "make_student": ".students",
    "select_text_layers": ".students",
    "AudioTextDistillationTrainer": ".trainer",
    "AudioTextCollator": ".data",
    "AudioTextFitResult": ".fit",
    "fit_audio_text": ".fit",
    "predict_audio_text": ".predict",
    "AudioTextMethod": ".method",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
