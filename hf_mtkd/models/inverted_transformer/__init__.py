"""The inverted-transformer student on frozen upstream features and the waveform model that runs the upstream and
the student: configurations, upstream, models (import on first use)."""

from ...utils.lazy import lazy_exports

_EXPORTS = {
    "ACTIVATIONS": ".configuration_inverted_transformer",
    "FILTERBANKS": ".configuration_inverted_transformer",
    "InvertedTransformerConfig": ".configuration_inverted_transformer",
    "WaveformStudentConfig": ".configuration_inverted_transformer",
    "InvertedTransformerForFeatureClassification": ".modeling_inverted_transformer",
    "WaveformStudentForAudioClassification": ".modeling_waveform_student",
    "upstream_feature_extractor": ".upstream",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
