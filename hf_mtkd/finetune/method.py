"""Plain fine-tuning: every hook keeps the standard flow of `hf_mtkd.training.method.Method`; the trainer carries
the card text."""

from __future__ import annotations

from ..registry import register_method
from ..training.method import Method
from .trainer import FineTuneTrainer


@register_method
class FineTuneMethod(Method):
    name = "finetune"
    display_name = "FT"
    trainer_class = FineTuneTrainer
