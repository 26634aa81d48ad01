"""hf_mtkd's own architectures, one folder each (transformers' `models/<name>/` shape), whatever method trains them.

    logmel_cnn/            the compact log-mel CNN student
    early_exit/            a wav2vec2-family encoder with real early exits (self_distillation trains it)
    inverted_transformer/  the inverted-transformer student on frozen upstream features, and the waveform model that
                           runs the upstream and that student (meta_curriculum trains them)
    audio_text/            the audio + text classifier, its processor, tokenizer and pipeline task (audio_text)

Registered with transformers' Auto classes by `import hf_mtkd` (rows of `hf_mtkd.auto_classes.AUTO_MODELS`), so
`pipeline("audio-classification", model=path)` loads saved models. The names below import on first use."""

from ..utils.lazy import lazy_exports

_EXPORTS = {
    "GE2EConfig": ".ge2e.configuration_ge2e",
    "GE2EFeatureExtractor": ".ge2e.feature_extraction_ge2e",
    "GE2EForAudioClassification": ".ge2e.modeling_ge2e",
    "GE2EModel": ".ge2e.modeling_ge2e",
    "LogMelCNNConfig": ".logmel_cnn.configuration_logmel_cnn",
    "LogMelFeatureExtractor": ".logmel_cnn.feature_extraction_logmel_cnn",
    "LogMelCNNForAudioClassification": ".logmel_cnn.modeling_logmel_cnn",
    "LogMelCNNModel": ".logmel_cnn.modeling_logmel_cnn",
    "LogMelCNNPreTrainedModel": ".logmel_cnn.modeling_logmel_cnn",
    "masked_statistics_pooling": ".logmel_cnn.modeling_logmel_cnn",
    "EarlyExitAudioConfig": ".early_exit.configuration_early_exit",
    "EarlyExitForAudioClassification": ".early_exit.modeling_early_exit",
    "InvertedTransformerConfig": ".inverted_transformer.configuration_inverted_transformer",
    "WaveformStudentConfig": ".inverted_transformer.configuration_inverted_transformer",
    "InvertedTransformerForFeatureClassification": ".inverted_transformer.modeling_inverted_transformer",
    "WaveformStudentForAudioClassification": ".inverted_transformer.modeling_waveform_student",
    "AudioTextConfig": ".audio_text.configuration_audio_text",
    "AudioTextForSequenceClassification": ".audio_text.modeling_audio_text",
    "AudioTextProcessor": ".audio_text.processing_audio_text",
    "AudioTextClassificationPipeline": ".audio_text.pipeline_audio_text",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
