"""Meta-teacher + curriculum distillation with a frozen-feature inverted-transformer student (SPEC section 3,
Zhao et al.; open points settled by MPDistil's code). Entry: `fit_meta_curriculum`.

Names resolve on first use (PEP 562), so importing this package is cheap; `register_auto_classes()` registers
the student and the exported waveform model with the Auto classes (it imports the two model modules only).
"""

import importlib

CARD_TEXT = (
    "Student distilled with meta-teacher + curriculum knowledge distillation (Zhao et al.): an inverted-transformer "
    "student (each feature channel one token) on the features of a frozen upstream, trained with supervised "
    "contrastive + cross-entropy loss (MoCo, SpecAugment), distilled from a meta-teacher whose head learns from both "
    "teacher and student, then updated on batches a REINFORCE policy picks from easy to hard. The saved model "
    "contains the frozen upstream and the student and takes waveforms. Its architecture is hf_mtkd's own: "
    "`import hf_mtkd` before `pipeline(\"audio-classification\", model=...)` or `AutoModelForAudioClassification`."
)
CITATION = """@misc{zhao_kd_ser,
  title  = {A Knowledge Distillation-based Approach to Speech Emotion Recognition},
  author = {Zhao, Ziping and Liu, Jixin and Wang, Haishuai and Bandara, Danushka and Tao, Jianhua}
}
@inproceedings{sengupta2024mpdistil,
  title     = {A Good Learner can Teach Better: Teacher-Student Collaborative Knowledge Distillation},
  author    = {Sengupta, Ayan and Dixit, Shantanu and Akhtar, Md Shad and Chakraborty, Tanmoy},
  booktitle = {The Twelfth International Conference on Learning Representations},
  year      = {2024}
}"""

_EXPORTS = {
    "MetaCurriculumConfig": "hf_mtkd.meta_curriculum.config",
    "InvertedTransformerConfig": "hf_mtkd.meta_curriculum.student_config",
    "WaveformStudentConfig": "hf_mtkd.meta_curriculum.student_config",
    "InvertedTransformerForFeatureClassification": "hf_mtkd.meta_curriculum.student",
    "WaveformStudentForAudioClassification": "hf_mtkd.meta_curriculum.waveform_model",
    "MetaTeacher": "hf_mtkd.meta_curriculum.teacher",
    "MetaCurriculumStudentTrainer": "hf_mtkd.meta_curriculum.trainer",
    "CurriculumPolicy": "hf_mtkd.meta_curriculum.curriculum",
    "run_curriculum": "hf_mtkd.meta_curriculum.curriculum",
    "MetaCurriculumResult": "hf_mtkd.meta_curriculum.fit",
    "fit_meta_curriculum": "hf_mtkd.meta_curriculum.fit",
    "upstream_feature_extractor": "hf_mtkd.meta_curriculum.fit",
    "format_stage_table": "hf_mtkd.meta_curriculum.report",
    "supcon_loss": "hf_mtkd.meta_curriculum.losses",
    "kd_loss": "hf_mtkd.meta_curriculum.losses",
    "reinforce_loss": "hf_mtkd.meta_curriculum.losses",
}

__all__ = sorted(_EXPORTS) + ["CARD_TEXT", "CITATION", "register_auto_classes"]


def register_auto_classes() -> None:
    """AutoConfig knows both model types; AutoModelForAudioClassification loads the waveform model (what
    pipeline() needs) and the feature-level student."""
    from transformers import AutoConfig, AutoModelForAudioClassification

    from .student import InvertedTransformerForFeatureClassification
    from .student_config import InvertedTransformerConfig, WaveformStudentConfig
    from .waveform_model import WaveformStudentForAudioClassification

    AutoConfig.register(InvertedTransformerConfig.model_type, InvertedTransformerConfig, exist_ok=True)
    AutoConfig.register(WaveformStudentConfig.model_type, WaveformStudentConfig, exist_ok=True)
    AutoModelForAudioClassification.register(InvertedTransformerConfig, InvertedTransformerForFeatureClassification, exist_ok=True)
    AutoModelForAudioClassification.register(WaveformStudentConfig, WaveformStudentForAudioClassification, exist_ok=True)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'hf_mtkd.meta_curriculum' has no attribute {name!r}")
