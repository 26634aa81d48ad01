"""hf_mtkd: knowledge distillation for speech emotion recognition on the Hugging Face stack.

Public names import on first use (PEP 562). Importing `hf_mtkd` registers hf_mtkd's model types with
transformers' Auto classes (`hf_mtkd.auto_classes`), so that `AutoModelForAudioClassification` and
`pipeline("audio-classification")` load saved models of `hf_mtkd.models`.
"""

from .auto_classes import register_auto_configs
from .utils.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "DataArguments": "hf_mtkd.arguments",
    "ModelArguments": "hf_mtkd.arguments",
    "SERTrainer": "hf_mtkd.training",
    "SERTrainingArguments": "hf_mtkd.training",
    "Method": "hf_mtkd.training.method",
    "RunSetup": "hf_mtkd.training.method",
    "SelfFittingMethod": "hf_mtkd.training.method",
    "CardSection": "hf_mtkd.registry",
    "MethodInfo": "hf_mtkd.registry",
    "Paper": "hf_mtkd.registry",
    "get_method": "hf_mtkd.registry",
    "register_method": "hf_mtkd.registry",
    "RunSummary": "hf_mtkd.run_summary",
    "MultiTeacherDistillationConfig": "hf_mtkd.mtkd",
    "MultiTeacherDistillationTrainer": "hf_mtkd.mtkd",
    "SelfDistillationConfig": "hf_mtkd.self_distillation",
    "SelfDistillationTrainer": "hf_mtkd.self_distillation",
    "EarlyExitAudioConfig": "hf_mtkd.models",
    "EarlyExitForAudioClassification": "hf_mtkd.models",
    "MetaCurriculumConfig": "hf_mtkd.meta_curriculum",
    "WaveformStudentForAudioClassification": "hf_mtkd.models",
    "AudioTextDistillationConfig": "hf_mtkd.audio_text",
    "AudioTextDistillationTrainer": "hf_mtkd.audio_text",
    "AudioTextForSequenceClassification": "hf_mtkd.models",
    "AudioTextProcessor": "hf_mtkd.models",
    "LogMelCNNConfig": "hf_mtkd.models",
    "LogMelCNNForAudioClassification": "hf_mtkd.models",
    "LogMelFeatureExtractor": "hf_mtkd.models",
    "GE2EConfig": "hf_mtkd.models",
    "GE2EForAudioClassification": "hf_mtkd.models",
    "GE2EFeatureExtractor": "hf_mtkd.models",
    "compute_ser_metrics": "hf_mtkd.metrics",
    "load_corpus": "hf_mtkd.corpora",
    "build_demo_corpus": "hf_mtkd.corpora.synthetic_demo",
}

__all__ = sorted(_EXPORTS) + ["__version__"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

register_auto_configs()
