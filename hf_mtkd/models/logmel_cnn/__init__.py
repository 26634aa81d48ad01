"""A compact log-mel CNN classifier: configuration, feature extractor and model."""

from .configuration_logmel_cnn import LogMelCNNConfig
from .feature_extraction_logmel_cnn import LogMelFeatureExtractor
from .modeling_logmel_cnn import (
    LogMelCNNForAudioClassification,
    LogMelCNNModel,
    LogMelCNNPreTrainedModel,
    masked_statistics_pooling,
)

__all__ = [
    "LogMelCNNConfig",
    "LogMelCNNForAudioClassification",
    "LogMelCNNModel",
    "LogMelCNNPreTrainedModel",
    "LogMelFeatureExtractor",
    "masked_statistics_pooling",
]
