"""Self-distillation of wav2vec2-family models with real early exits (SPEC section 2).

`EarlyExitAudioConfig` / `EarlyExitForAudioClassification` are registered with `AutoConfig` and
`AutoModelForAudioClassification` by `import hf_mtkd` (see `hf_mtkd.auto_classes`), so that
`pipeline("audio-classification")` loads saved models. The names below import on first use.
"""

from ..utils.lazy import lazy_exports

_EXPORTS = {
    "EarlyExitModelArguments": ".config",
    "SelfDistillationConfig": ".config",
    "EXIT_BLOCKS": ".configuration_early_exit",
    "SUPPORTED_BACKBONES": ".configuration_early_exit",
    "EarlyExitAudioConfig": ".configuration_early_exit",
    "build_exit_model": ".export",
    "export_exit": ".export",
    "SIMILARITIES": ".losses",
    "SIMILARITY_LEVELS": ".losses",
    "kl_divergence": ".losses",
    "self_distillation_loss": ".losses",
    "similarity_loss": ".losses",
    "ExitEvaluation": ".evaluation",
    "early_exit_from_logits": ".evaluation",
    "evaluate_exits": ".evaluation",
    "evaluate_exits_with_trainer": ".evaluation",
    "exits_from_logits": ".evaluation",
    "measure_exit_latency": ".evaluation",
    "pad_batch": ".evaluation",
    "EarlyExitClassifierOutput": ".modeling_early_exit",
    "EarlyExitForAudioClassification": ".modeling_early_exit",
    "EarlyExitPrediction": ".modeling_early_exit",
    "fuse_by_margin": ".exit_heads",
    "SelfDistillationTrainer": ".trainer",
    "make_exit_compute_metrics": ".trainer",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
