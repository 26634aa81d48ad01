"""MTKD in the shared training flow: load teachers, optionally fill the logit cache, build the trainer."""

from __future__ import annotations

import logging

from datasets import DatasetDict

from ..methods import Method
from ..windowing import random_training_windows
from .cache import add_teacher_logits, check_cache_allowed
from .collator import MultiTeacherCollator
from .config import MultiTeacherDistillationConfig
from .teachers import load_teacher
from .trainer import MultiTeacherDistillationTrainer

logger = logging.getLogger(__name__)


class MultiTeacherMethod(Method):
    name = "mtkd"
    display_name = "MTKD"
    training_args_class = MultiTeacherDistillationConfig

    def build_trainer(self, context, compute_metrics):
        args: MultiTeacherDistillationConfig = context.training_args
        specs = args.teacher_specs()
        teachers = [
            load_teacher(spec, context.label_names, context.feature_extractor, args.teacher_dtype,
                         trust_remote_code=context.model_args.trust_remote_code)
            for spec in specs
        ]
        splits = context.splits
        if args.use_teacher_logit_cache:
            check_cache_allowed(random_training_windows(context.data_args))
            # Main process first: it fills the datasets cache files, the others read them.
            with args.main_process_first(desc="teacher-logit cache"):
                splits = DatasetDict({
                    name: add_teacher_logits(
                        ds, teachers, context.feature_extractor, max_samples=context.collator.max_samples,
                        batch_size=args.teacher_batch_size, device=args.device,
                    )
                    for name, ds in splits.items()
                })
            context.splits = splits
            teachers_for_training = []  # training runs no teacher
        else:
            teachers_for_training = teachers
        own_fes = tuple(None if t.shares_student_inputs else t.feature_extractor for t in teachers)
        collator_kwargs = {k: getattr(context.collator, k) for k in (
            "feature_extractor", "sampling_rate", "language_column", "language_to_id", "max_samples", "seed")}
        collator = MultiTeacherCollator(**collator_kwargs, random_crop=context.data_args.random_crop,
                                        teacher_feature_extractors=own_fes)
        eval_collator = MultiTeacherCollator(**collator_kwargs, random_crop=False, teacher_feature_extractors=own_fes)
        context.eval_collator = eval_collator
        return MultiTeacherDistillationTrainer(
            model=context.model,
            args=args,
            train_dataset=splits["train"],
            eval_dataset=splits["validation"],
            data_collator=collator,
            eval_data_collator=eval_collator,
            processing_class=context.feature_extractor,
            compute_metrics=compute_metrics,
            teachers=teachers_for_training,
            teacher_names=[spec.name for spec in specs],
            teacher_languages=[spec.language for spec in specs],
            languages=context.languages,
        )

    def after_training(self, context, trainer) -> dict:
        weights = trainer.mean_teacher_weights()
        if trainer.is_world_process_zero() and weights:
            print(format_teacher_weight_table(weights))
        return {"teacher_weights_per_language": weights}


def format_teacher_weight_table(weights: dict[str, dict[str, float]], title: str = "") -> str:
    """Rows = languages of the training samples, columns = teachers, cells = mean weight received."""
    teachers = list(next(iter(weights.values())))
    lines = [title or "Mean teacher weight per language (training steps):",
             "language  " + "  ".join(f"{t:>10}" for t in teachers)]
    lines += [f"{lang:<8}  " + "  ".join(f"{row[t]:>10.3f}" for t in teachers) for lang, row in weights.items()]
    return "\n".join(lines)
