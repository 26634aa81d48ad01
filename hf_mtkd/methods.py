"""What differs between methods in the shared training flow (`hf_mtkd.training.run`)."""

from __future__ import annotations

import importlib

from transformers import AutoConfig

from .arguments import DataArguments, ModelArguments
from .modeling_utils import build_student, default_feature_extractor, load_feature_extractor
from .training import SERTrainer, SERTrainingArguments


class Method:
    """Plain fine-tuning (the papers' FT-Mono / FT-Multi baselines). Subclasses change the pieces."""

    name = "finetune"
    display_name = "FT"
    training_args_class = SERTrainingArguments
    trainer_class = SERTrainer
    extra_dataclasses: tuple = ()

    def dataclass_types(self) -> tuple:
        return (ModelArguments, DataArguments, self.training_args_class, *self.extra_dataclasses)

    def probe_feature_extractor(self, model_args: ModelArguments, extra_args):
        """The student's feature extractor, needed before the model (it fixes the sampling rate)."""
        if model_args.model_name_or_path or model_args.feature_extractor_name:
            return load_feature_extractor(model_args)
        return default_feature_extractor(AutoConfig.for_model(model_args.model_type, **(model_args.config_overrides or {})))

    def build_model(self, model_args, extra_args, label_names):
        return build_student(model_args, label_names)

    def build_trainer(self, context, compute_metrics):
        return self.trainer_class(
            model=context.model,
            args=context.training_args,
            train_dataset=context.splits["train"],
            eval_dataset=context.splits["validation"],
            data_collator=context.collator,
            eval_data_collator=context.eval_collator,
            processing_class=context.feature_extractor,
            compute_metrics=compute_metrics,
        )

    def after_training(self, context, trainer) -> dict:
        return {}


FineTune = Method


# Imported lazily: each method's module imports this one.
METHODS = {
    "finetune": "hf_mtkd.methods:FineTune",
    "mtkd": "hf_mtkd.multi_teacher.method:MultiTeacherMethod",
    "self_distillation": "hf_mtkd.self_distillation.method:SelfDistillationMethod",
}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"Unknown method {name!r}; choose one of {sorted(METHODS)}.")
    module_name, class_name = METHODS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)()
