"""Self-distillation of wav2vec2-family models with real early exits (SPEC section 2).

The model it trains, `EarlyExitForAudioClassification`, lives in `hf_mtkd.models.early_exit`. The names below
import on first use.
"""

from ..utils.lazy import lazy_exports

_EXPORTS = {
    "EarlyExitModelArguments": ".config",
    "SelfDistillationConfig": ".config",
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
    "SelfDistillationTrainer": ".trainer",
    "make_exit_compute_metrics": ".trainer",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
