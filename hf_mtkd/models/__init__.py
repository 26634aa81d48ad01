"""hf_mtkd's own model architectures, loadable with the Auto classes after `register_auto_classes()`
(`import hf_mtkd` calls it), so `pipeline("audio-classification", model=path)` works on saved models."""

from .logmel_cnn import (
    LogMelCNNConfig,
    LogMelCNNForAudioClassification,
    LogMelCNNModel,
    LogMelFeatureExtractor,
)


def register_auto_classes() -> None:
    """Register every architecture here with AutoConfig, AutoModel, AutoModelForAudioClassification and
    AutoFeatureExtractor (idempotent)."""
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoModelForAudioClassification

    AutoConfig.register(LogMelCNNConfig.model_type, LogMelCNNConfig, exist_ok=True)
    AutoModel.register(LogMelCNNConfig, LogMelCNNModel, exist_ok=True)
    AutoModelForAudioClassification.register(LogMelCNNConfig, LogMelCNNForAudioClassification, exist_ok=True)
    AutoFeatureExtractor.register(LogMelCNNConfig, LogMelFeatureExtractor, exist_ok=True)


__all__ = [
    "LogMelCNNConfig",
    "LogMelCNNForAudioClassification",
    "LogMelCNNModel",
    "LogMelFeatureExtractor",
    "register_auto_classes",
]
