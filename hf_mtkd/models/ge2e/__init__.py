"""A pretrained GE2E speaker encoder (Resemblyzer's weights) as an audio classifier: configuration, feature
extractor and model (import on first use)."""

from ...utils.lazy import lazy_exports

_EXPORTS = {
    "GE2EConfig": ".configuration_ge2e",
    "GE2EFeatureExtractor": ".feature_extraction_ge2e",
    "GE2EForAudioClassification": ".modeling_ge2e",
    "GE2EModel": ".modeling_ge2e",
    "GE2EPreTrainedModel": ".modeling_ge2e",
    "resemblyzer_weights_path": ".configuration_ge2e",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
