"""hf_mtkd's own audio-classification architectures. Registered with transformers' Auto classes by
`import hf_mtkd` (rows of `hf_mtkd.auto_classes.AUTO_MODELS`), so `pipeline("audio-classification",
model=path)` loads saved models. The names below import on first use."""

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
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
