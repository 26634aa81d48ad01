"""Language-aware multi-teacher knowledge distillation (MTKD)."""

from .config import MultiTeacherDistillationConfig
from .losses import cosine_teacher_weights, language_teacher_weights, multi_teacher_kd_loss
from .trainer import MultiTeacherDistillationTrainer

__all__ = [
    "MultiTeacherDistillationConfig",
    "MultiTeacherDistillationTrainer",
    "cosine_teacher_weights",
    "language_teacher_weights",
    "multi_teacher_kd_loss",
]
