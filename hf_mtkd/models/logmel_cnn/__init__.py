"""A compact log-mel CNN classifier: configuration, feature extractor and model (import on first use)."""

from ...utils.lazy import lazy_exports

_EXPORTS = {
    "LogMelCNNConfig": ".configuration_logmel_cnn",
    "LogMelFeatureExtractor": ".feature_extraction_logmel_cnn",
    "LogMelCNNForAudioClassification": ".modeling_logmel_cnn",
    "LogMelCNNModel": ".modeling_logmel_cnn",
    "LogMelCNNPreTrainedModel": ".modeling_logmel_cnn",
    "masked_statistics_pooling": ".modeling_logmel_cnn",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
