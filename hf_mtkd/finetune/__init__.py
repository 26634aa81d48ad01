"""Plain fine-tuning (the papers' FT-Mono / FT-Multi baselines): the standard flow with `SERTrainer`."""

from .method import FineTuneMethod

__all__ = ["FineTuneMethod"]
