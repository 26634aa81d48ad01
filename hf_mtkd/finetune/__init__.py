"""Plain fine-tuning (the papers' FT-Mono / FT-Multi baselines): the standard flow with `SERTrainer`."""

from .method import FineTuneMethod
from .trainer import FineTuneTrainer

__all__ = ["FineTuneMethod", "FineTuneTrainer"]
