"""Configuration of multi-teacher (language-aware) distillation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..arguments import JSONField
from ..training.args import SERTrainingArguments
from ..distillation.losses import KL_DIRECTIONS
from ..distillation.teachers import TeacherSpec, parse_teachers
from .losses import KL_REDUCTIONS

WEIGHTING_STRATEGIES = ("cosine", "uniform", "language", "fixed")
TEACHER_DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class MultiTeacherDistillationConfig(SERTrainingArguments):
    """TrainingArguments for language-aware multi-teacher KD (MTKD); one teacher is KD-Mono."""

    teachers: Optional[JSONField] = field(  # a list from Python, JSON text from YAML/CLI
        default=None,
        metadata={
            "help": "Frozen teachers: a list of {model: <hub id or path>, language: <tag>} (JSON on the command line)."
        },
    )
    kd_lambda: float = field(
        default=0.25,
        metadata={
            "help": "Weight of the KD term: L = (1 - kd_lambda) * CE + kd_lambda * KD (paper: 0.25; KD-Mono 0.75)."
        },
    )
    temperature: float = field(default=5.0, metadata={"help": "Softmax temperature T of the KD term (scaled by T^2)."})
    kl_direction: str = field(
        default="forward",
        metadata={"help": "forward = KL(P_T || P_S) (authors' code); reverse = KL(P_S || P_T) (paper's equation)."},
    )
    kl_reduction: str = field(
        default="batchmean",
        metadata={"help": "batchmean: per-sample KL averaged over the batch; mean: also / classes (authors' code)."},
    )
    teacher_weighting: str = field(
        default="cosine", metadata={"help": "How teachers are weighted: cosine, uniform, language or fixed."}
    )
    weighting_temperature: float = field(
        default=0.25, metadata={"help": "tau_w in w = softmax(cos / tau_w) for cosine weighting."}
    )
    cosine_per_sample: bool = field(
        default=False, metadata={"help": "Cosine weights per sample instead of one set per batch (the authors' code)."}
    )
    fixed_teacher_weights: Optional[list[float]] = field(
        default=None, metadata={"help": "Weights for teacher_weighting=fixed, one per teacher (normalised to sum 1)."}
    )
    teacher_dtype: str = field(default="float32", metadata={"help": "Teacher precision: float32, bfloat16 or "
                                                                    "float16."})
    teacher_batch_size: int = field(default=32, metadata={"help": "Batch size when filling the teacher-logit cache."})
    use_teacher_logit_cache: bool = field(
        default=False,
        metadata={
            "help": "Compute all teachers' logits once before training (stored with the dataset); training runs no "
                    "teacher."
        },
    )

    def __post_init__(self):
        super().__post_init__()
        if self.teachers is None:
            raise ValueError("teachers is required: give at least one {model, language} teacher.")
        self.teachers = [vars(spec).copy() for spec in parse_teachers(self.teachers)]
        if not self.teachers:
            raise ValueError("teachers is empty: give at least one {model, language} teacher.")
        if not 0.0 <= self.kd_lambda <= 1.0:
            raise ValueError(f"kd_lambda must be in [0, 1], got {self.kd_lambda}.")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}.")
        if self.weighting_temperature <= 0:
            raise ValueError(f"weighting_temperature must be > 0, got {self.weighting_temperature}.")
        if self.kl_direction not in KL_DIRECTIONS:
            raise ValueError(f"kl_direction must be one of {KL_DIRECTIONS}, got {self.kl_direction!r}.")
        if self.kl_reduction not in KL_REDUCTIONS:
            raise ValueError(f"kl_reduction must be one of {KL_REDUCTIONS}, got {self.kl_reduction!r}.")
        if self.teacher_weighting not in WEIGHTING_STRATEGIES:
            raise ValueError(f"teacher_weighting must be one of {WEIGHTING_STRATEGIES}, got "
                             f"{self.teacher_weighting!r}.")
        if self.teacher_dtype not in TEACHER_DTYPES:
            raise ValueError(f"teacher_dtype must be one of {TEACHER_DTYPES}, got {self.teacher_dtype!r}.")
        if self.teacher_weighting == "fixed":
            weights = self.fixed_teacher_weights
            if not weights or len(weights) != len(self.teachers):
                raise ValueError(
                    f"teacher_weighting=fixed needs fixed_teacher_weights with one weight per teacher "
                    f"({len(self.teachers)})."
                )
            if any(w < 0 for w in weights) or sum(weights) <= 0:
                raise ValueError(f"fixed_teacher_weights must be >= 0 with a positive sum, got {weights}.")
        if self.teacher_weighting == "language" and any(t["language"] is None for t in self.teachers):
            raise ValueError("teacher_weighting=language needs a language on every teacher.")
        if self.teacher_batch_size < 1:
            raise ValueError(f"teacher_batch_size must be >= 1, got {self.teacher_batch_size}.")

    def teacher_specs(self) -> list[TeacherSpec]:
        return parse_teachers(self.teachers)
