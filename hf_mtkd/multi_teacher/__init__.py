"""Language-aware multi-teacher knowledge distillation (MTKD)."""

from .config import MultiTeacherDistillationConfig, TeacherSpec, parse_teachers
from .losses import cosine_teacher_weights, kl_per_sample, language_teacher_weights, multi_teacher_kd_loss
from .trainer import MultiTeacherDistillationTrainer

__all__ = [
    "MultiTeacherDistillationConfig",
    "MultiTeacherDistillationTrainer",
    "TeacherSpec",
    "cosine_teacher_weights",
    "kl_per_sample",
    "language_teacher_weights",
    "multi_teacher_kd_loss",
    "parse_teachers",
]
