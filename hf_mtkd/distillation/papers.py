"""Papers that more than one method cites (one source for their card text)."""

from __future__ import annotations

from ..registry import Paper

#: FT-Mono / FT-Multi (method finetune) are the fine-tuning baselines of this paper, and MTKD (method mtkd) its
#: method.
LANGUAGE_AWARE_MTKD_PAPER = Paper(
    title="Multi-Teacher Language-Aware Knowledge Distillation for Multilingual Speech Emotion Recognition",
    authors="Mehedi Hasan Bijoy, Dejan Porjazovski, Tamás Grósz and Mikko Kurimo",
)

__all__ = ["LANGUAGE_AWARE_MTKD_PAPER"]
