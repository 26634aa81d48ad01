"""Configs of self-distillation: the training arguments and the arguments that build the model."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..training.args import SERTrainingArguments
from ..models.early_exit.configuration_early_exit import EXIT_BLOCKS, validate_block, validate_exit_layers
from .losses import SIMILARITY_LEVELS, parse_similarity


@dataclass
class SelfDistillationConfig(SERTrainingArguments):
    """`SERTrainingArguments` (a `TrainingArguments`) plus the self-distillation loss (SPEC section 2; paper
    defaults). Model selection uses the deepest head's validation metric."""

    gamma: float = field(default=1.0, metadata={"help": "Weight of the exits' cross-entropy, averaged over exits."})
    alpha: float = field(
        default=1.0, metadata={"help": "Weight of KL(P_deepest || P_exit), averaged over exits."}
    )
    beta: float = field(
        default=1.0,
        metadata={"help": "Weight of the similarity between deep and exit representations, averaged over exits."},
    )
    similarity: str = field(
        default="l2",
        metadata={
            "help": "Similarity loss: l1 (mean absolute error), l2 (mean squared error), cosine (1 - cosine) or a "
            "sum joined by '+', e.g. l2+cosine."
        },
    )
    similarity_level: str = field(
        default="embedding",
        metadata={
            "help": "Where the similarity is taken: 'embedding' (pooled block outputs H_N vs H_Ma) or 'linear' "
            "(first linear layers' outputs H_L vs H_La)."
        },
    )
    centre_similarity: bool = field(
        default=True,
        metadata={
            "help": "Compare the representations centred on their batch means (what distinguishes the clips), not "
            "raw: the raw L2 is dominated by an offset every clip shares, which collapsed a model trained from "
            "scratch to chance (see self_distillation/losses.py). false: the paper's raw form."
        },
    )
    kd_temperature: float = field(
        default=1.0, metadata={"help": "Softmax temperature of the KL term (scaled by T^2); the paper uses 1."}
    )
    detach_deep_target: bool = field(
        default=True,
        metadata={
            "help": "Stop the KL and similarity gradients into the deepest head (they then train the exits only)."
        },
    )

    def __post_init__(self):
        super().__post_init__()
        for name in ("gamma", "alpha", "beta"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}.")
        parse_similarity(self.similarity)
        if self.similarity_level not in SIMILARITY_LEVELS:
            raise ValueError(
                f"similarity_level must be one of {', '.join(SIMILARITY_LEVELS)}, got {self.similarity_level!r}."
            )
        if self.kd_temperature <= 0:
            raise ValueError(f"kd_temperature must be > 0, got {self.kd_temperature}.")


@dataclass
class EarlyExitModelArguments:
    """What turns a backbone into an early-exit model (`EarlyExitForAudioClassification.from_backbone`)."""

    exit_layers: list[int] = field(
        default_factory=lambda: [3, 8, 10],
        metadata={"help": "Transformer layers (1-based) after which an exit sits; each in 1..num_hidden_layers-1."},
    )
    exit_block: str = field(
        default="none",
        metadata={
            "help": f"Block between an exit's layer and its pooling: {', '.join(EXIT_BLOCKS)}. The paper compares "
            "cnn, lstm and gru; 'none' exits export as stock transformers models."
        },
    )
    head_hidden_size: int = field(default=256, metadata={"help": "Output size of the first linear layer of every "
                                                                 "head."})

    def __post_init__(self):
        # The upper bound needs the backbone's depth and is checked when the model is built.
        self.exit_layers = validate_exit_layers(self.exit_layers)
        validate_block(self.exit_block, "exit_block")
        if self.head_hidden_size < 1:
            raise ValueError(f"head_hidden_size must be >= 1, got {self.head_hidden_size}.")

    def model_kwargs(self) -> dict:
        """Keyword arguments for `EarlyExitForAudioClassification.from_backbone`."""
        return {
            "exit_layers": list(self.exit_layers),
            "exit_block": self.exit_block,
            "head_hidden_size": self.head_hidden_size,
        }


__all__ = ["EarlyExitModelArguments", "SelfDistillationConfig"]
