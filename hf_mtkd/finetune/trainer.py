"""The trainer of plain fine-tuning: `SERTrainer` with the FT baselines' card text."""

from __future__ import annotations

from ..distillation.papers import LANGUAGE_AWARE_MTKD_PAPER
from ..training.trainer import SERTrainer


class FineTuneTrainer(SERTrainer):
    """Plain fine-tuning with cross-entropy (the papers' FT-Mono / FT-Multi baselines)."""

    _name = "fine-tuning (FT)"
    _description = (
        "Plain fine-tuning with cross-entropy on the emotion labels: the FT-Mono / FT-Multi baseline "
        "of language-aware multi-teacher distillation."
    )
    _paper = LANGUAGE_AWARE_MTKD_PAPER
    _tag_names = ("finetune",)


__all__ = ["FineTuneTrainer"]
