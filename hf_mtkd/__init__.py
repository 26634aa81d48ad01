"""hf_mtkd: knowledge distillation for speech emotion recognition on the Hugging Face stack."""

__version__ = "0.1.0"

from .arguments import DataArguments, ModelArguments
from .training import SERTrainer, SERTrainingArguments

__all__ = ["DataArguments", "ModelArguments", "SERTrainer", "SERTrainingArguments", "__version__"]
