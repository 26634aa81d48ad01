"""A wav2vec2-family encoder with real early exits: configuration, exit heads and model (import on first use)."""

from ...utils.lazy import lazy_exports

_EXPORTS = {
    "EXIT_BLOCKS": ".configuration_early_exit",
    "SUPPORTED_BACKBONES": ".configuration_early_exit",
    "EarlyExitAudioConfig": ".configuration_early_exit",
    "fuse_by_margin": ".exit_heads",
    "EarlyExitClassifierOutput": ".modeling_early_exit",
    "EarlyExitForAudioClassification": ".modeling_early_exit",
    "EarlyExitPrediction": ".modeling_early_exit",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
