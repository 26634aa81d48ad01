"""hf_mtkd: knowledge distillation for speech emotion recognition on the Hugging Face stack.

Public names resolve on first use (PEP 562). Importing `hf_mtkd` registers the early-exit
model and the compact log-mel CNN with the Auto classes, so that `AutoModelForAudioClassification`
and `pipeline("audio-classification")` load saved hf_mtkd models.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "DataArguments": "hf_mtkd.arguments",
    "ModelArguments": "hf_mtkd.arguments",
    "SERTrainer": "hf_mtkd.training",
    "SERTrainingArguments": "hf_mtkd.training",
    "MultiTeacherDistillationConfig": "hf_mtkd.multi_teacher",
    "MultiTeacherDistillationTrainer": "hf_mtkd.multi_teacher",
    "SelfDistillationConfig": "hf_mtkd.self_distillation",
    "SelfDistillationTrainer": "hf_mtkd.self_distillation",
    "EarlyExitAudioConfig": "hf_mtkd.self_distillation",
    "EarlyExitForAudioClassification": "hf_mtkd.self_distillation",
    "LogMelCNNConfig": "hf_mtkd.models",
    "LogMelCNNForAudioClassification": "hf_mtkd.models",
    "LogMelFeatureExtractor": "hf_mtkd.models",
    "compute_ser_metrics": "hf_mtkd.metrics",
    "load_corpus": "hf_mtkd.corpora",
    "build_demo_corpus": "hf_mtkd.data.demo_corpus",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'hf_mtkd' has no attribute {name!r}")


importlib.import_module("hf_mtkd.self_distillation")  # registers the Auto classes
importlib.import_module("hf_mtkd.models").register_auto_classes()  # the compact log-mel CNN
