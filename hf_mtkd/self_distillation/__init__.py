"""Self-distillation of wav2vec2-family models with real early exits (SPEC section 2).

Importing this package registers `EarlyExitAudioConfig` / `EarlyExitForAudioClassification` with
`AutoConfig` and `AutoModelForAudioClassification`, so `pipeline("audio-classification")` loads saved models.
"""

from transformers import AutoConfig, AutoModelForAudioClassification

from .config import EarlyExitModelArguments, SelfDistillationConfig
from .configuration_early_exit import EXIT_BLOCKS, SUPPORTED_BACKBONES, EarlyExitAudioConfig
from .export import build_exit_model, export_exit
from .losses import SIMILARITIES, SIMILARITY_LEVELS, kl_divergence, self_distillation_loss, similarity_loss
from .evaluation import ExitEvaluation, evaluate_exits, measure_exit_latency, pad_batch
from .modeling_early_exit import EarlyExitClassifierOutput, EarlyExitForAudioClassification, EarlyExitPrediction, fuse_by_margin
from .trainer import SelfDistillationTrainer, make_exit_compute_metrics

AutoConfig.register(EarlyExitAudioConfig.model_type, EarlyExitAudioConfig, exist_ok=True)
AutoModelForAudioClassification.register(EarlyExitAudioConfig, EarlyExitForAudioClassification, exist_ok=True)

__all__ = [
    "EXIT_BLOCKS",
    "SIMILARITIES",
    "SIMILARITY_LEVELS",
    "SUPPORTED_BACKBONES",
    "EarlyExitAudioConfig",
    "EarlyExitClassifierOutput",
    "EarlyExitForAudioClassification",
    "EarlyExitModelArguments",
    "EarlyExitPrediction",
    "ExitEvaluation",
    "SelfDistillationConfig",
    "SelfDistillationTrainer",
    "build_exit_model",
    "evaluate_exits",
    "export_exit",
    "fuse_by_margin",
    "kl_divergence",
    "make_exit_compute_metrics",
    "measure_exit_latency",
    "pad_batch",
    "self_distillation_loss",
    "similarity_loss",
]
