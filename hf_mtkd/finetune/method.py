"""Plain fine-tuning: every hook keeps the standard flow of `hf_mtkd.training.method.Method`."""

from __future__ import annotations

from ..registry import register_method
from ..training.method import Method
from ..training.trainer import SERTrainer


@register_method
class FineTuneMethod(Method):
    name = "finetune"
    display_name = "FT"
    trainer_class = SERTrainer
