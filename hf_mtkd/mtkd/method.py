"""MTKD in the shared training flow: teachers loaded once, optionally the logit cache, collators that give
every teacher its own inputs, the trainer, and the mean teacher weight per language as the run's extra."""

from __future__ import annotations

import logging
from pathlib import Path

from datasets import DatasetDict

from ..distillation.cache import add_teacher_logits, check_cache_allowed
from ..distillation.teachers import Teacher, check_teacher_languages, load_teacher
from ..registry import CardSection, register_method
from ..training.method import Method, RunSetup
from ..windowing import random_training_windows
from .card import teachers_section
from .collator import MultiTeacherCollator
from .config import MultiTeacherDistillationConfig
from .trainer import MultiTeacherDistillationTrainer

logger = logging.getLogger(__name__)


@register_method
class MultiTeacherMethod(Method):
    name = "mtkd"
    display_name = "MTKD"
    training_args_class = MultiTeacherDistillationConfig
    trainer_class = MultiTeacherDistillationTrainer

    def __init__(self):
        self._teachers: list[Teacher] | None = None

    def teachers(self, setup: RunSetup, feature_extractor) -> list[Teacher]:
        """The frozen teachers of this run, loaded on first use (the cache and the collators both need them)."""
        if self._teachers is None:
            args: MultiTeacherDistillationConfig = setup.training_args
            specs = args.teacher_specs()
            if args.teacher_weighting == "language":  # before any teacher loads: a teacher no sample reaches
                check_teacher_languages({spec.name: spec.language for spec in specs}, setup.languages,
                                        setup.data_args.language_column_name)
            self._teachers = [
                load_teacher(spec, list(setup.label_names), feature_extractor, args.teacher_dtype,
                             trust_remote_code=setup.model_args.trust_remote_code)
                for spec in specs
            ]
        return self._teachers

    def prepare_splits(self, setup: RunSetup, splits, *, model, feature_extractor):
        """With `use_teacher_logit_cache`, every split gains a `teacher_logits` column (computed once, cached)."""
        args: MultiTeacherDistillationConfig = setup.training_args
        if not args.use_teacher_logit_cache:
            return splits
        check_cache_allowed(random_training_windows(setup.data_args))
        teachers = self.teachers(setup, feature_extractor)
        # Main process first: it fills the datasets cache files, the others read them.
        with args.main_process_first(desc="teacher-logit cache"):
            return DatasetDict({
                name: add_teacher_logits(
                    ds, teachers, feature_extractor, max_samples=setup.max_samples(feature_extractor.sampling_rate),
                    batch_size=args.teacher_batch_size, device=args.device,
                )
                for name, ds in splits.items()
            })

    def make_collators(self, setup: RunSetup, splits, *, feature_extractor):
        student, _ = super().make_collators(setup, splits, feature_extractor=feature_extractor)
        own = tuple(None if t.shares_student_inputs else t.feature_extractor
                    for t in self.teachers(setup, feature_extractor))
        common = {k: getattr(student, k) for k in (
            "feature_extractor", "sampling_rate", "language_column", "language_to_id", "max_samples", "seed")}
        return (
            MultiTeacherCollator(**common, random_crop=setup.data_args.random_crop, teacher_feature_extractors=own),
            MultiTeacherCollator(**common, random_crop=False, teacher_feature_extractors=own),
        )

    def build_trainer(self, setup: RunSetup, *, model, feature_extractor, splits, collators):
        args: MultiTeacherDistillationConfig = setup.training_args
        specs = args.teacher_specs()
        return MultiTeacherDistillationTrainer(
            **self.trainer_kwargs(setup, model=model, feature_extractor=feature_extractor, splits=splits,
                                  collators=collators),
            # From the cache, training runs no teacher.
            teachers=[] if args.use_teacher_logit_cache else self.teachers(setup, feature_extractor),
            teacher_names=[spec.name for spec in specs],
            teacher_languages=[spec.language for spec in specs],
            languages=list(setup.languages),
        )

    def summary_extras(self, setup: RunSetup, fitted, *, splits, feature_extractor, collators) -> dict:
        weights = fitted.mean_teacher_weights()  # a collective: every process calls it
        if fitted.is_world_process_zero() and weights:
            print(format_teacher_weight_table(weights))
        return {"teacher_weights_per_language": weights}

    def card_sections(self, setup: RunSetup, summary) -> list[CardSection]:
        args: MultiTeacherDistillationConfig = setup.training_args
        return [teachers_section(args.teacher_specs(), summary.get("teacher_weights_per_language"))]

    def figures(self, summary, output_dir) -> list:
        weights = summary.get("teacher_weights_per_language")
        if not weights:
            return []
        from .plots import TEACHER_WEIGHTS_FILE, plot_teacher_weights  # matplotlib is the optional `plots` extra

        return [plot_teacher_weights(weights, Path(output_dir) / TEACHER_WEIGHTS_FILE)]

    def multi_stage_tables(self, stage: str, summary) -> list[str]:
        weights = summary.get("teacher_weights_per_language")
        if not weights:
            return []
        return [format_teacher_weight_table(weights, f"Mean teacher weight per language during training ({stage}):")]


def format_teacher_weight_table(weights: dict[str, dict[str, float]], title: str = "") -> str:
    """Rows = languages of the training samples, columns = teachers, cells = mean weight received."""
    teachers = list(next(iter(weights.values())))
    lines = [title or "Mean teacher weight per language (training steps):",
             "language  " + "  ".join(f"{t:>10}" for t in teachers)]
    lines += [f"{lang:<8}  " + "  ".join(f"{row[t]:>10.3f}" for t in teachers) for lang, row in weights.items()]
    return "\n".join(lines)
