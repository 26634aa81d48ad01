from .args import SERTrainingArguments
from .trainer import SERTrainer

__all__ = ["SERTrainingArguments", "SERTrainer"]
