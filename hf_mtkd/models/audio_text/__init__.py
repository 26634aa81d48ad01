"""The audio + text emotion classifier (3M-SER fusion): configuration, model, processor, WordPiece tokenizer and the
"audio-text-classification" pipeline task (import on first use).

`AudioTextConfig` is registered with `AutoConfig` by `import hf_mtkd`; the first config of this type registers the
model, `AutoProcessor` and the pipeline task (`hf_mtkd.auto_classes`).
"""

from ...utils.lazy import lazy_exports

_EXPORTS = {
    "MODALITIES": ".configuration_audio_text",
    "POOLING_MODES": ".configuration_audio_text",
    "AudioTextConfig": ".configuration_audio_text",
    "AudioTextClassifierOutput": ".modeling_audio_text",
    "AudioTextForSequenceClassification": ".modeling_audio_text",
    "masked_pool": ".modeling_audio_text",
    "AudioTextProcessor": ".processing_audio_text",
    "AudioTextClassificationPipeline": ".pipeline_audio_text",
    "train_wordpiece_tokenizer": ".tokenization_audio_text",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
