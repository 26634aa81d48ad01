"""TrainingArguments with the defaults SER fine-tuning and distillation want."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
from transformers import TrainingArguments


@dataclass
class SERTrainingArguments(TrainingArguments):
    """TrainingArguments for SER. Changed defaults: select the best checkpoint on validation UR,
    evaluate and save each epoch, keep non-model columns (the collator picks what it needs), no pinned memory
    without an accelerator. Added: the bootstrap of the final reports and the chance-level warning."""

    eval_strategy: str = field(default="epoch", metadata={"help": "When to evaluate on the validation split."})
    save_strategy: str = field(default="epoch", metadata={"help": "When to save checkpoints."})
    load_best_model_at_end: bool = field(
        default=True, metadata={"help": "Keep the checkpoint with the best validation metric (never the test set)."}
    )
    metric_for_best_model: Optional[str] = field(
        default="UR", metadata={"help": "Validation metric for model selection (UR = unweighted recall)."}
    )
    greater_is_better: Optional[bool] = field(default=True, metadata={"help": "Whether a larger metric is better."})
    save_total_limit: Optional[int] = field(default=2, metadata={"help": "Checkpoints kept on disk."})
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Keep dataset columns: the SER collator selects the inputs itself."}
    )
    learning_rate: float = field(default=3e-5, metadata={"help": "Peak learning rate (the papers use 3e-5)."})
    logging_steps: float = field(default=10, metadata={"help": "Log every N steps."})
    hub_strategy: str = field(
        default="end",
        metadata={"help": "Push only at the end (with the card); per-save pushes would upload training_args.bin."},
    )
    n_bootstrap: int = field(
        default=1000,
        metadata={"help": "Bootstrap resamples for the confidence intervals of UR and WR in final reports."},
    )
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Allow writing into an output_dir that already holds a finished run."}
    )
    chance_level_patience: int = field(
        default=3,
        metadata={
            "help": "Warn (in the log, the run summary and the model card) when validation UR stays within "
            "chance_level_tolerance of chance level (1 / number of classes) for this many evaluations in a row; "
            "0 turns the warning off."
        },
    )
    chance_level_tolerance: float = field(
        default=0.02, metadata={"help": "How close to chance level validation UR counts as chance (0.02 = 2 points)."}
    )
    best_model_smoothing: int = field(
        default=1,
        metadata={
            "help": "Select the best checkpoint on the mean of metric_for_best_model over this many consecutive "
            "evaluations (the kept checkpoint is the last of the best window); 1: each evaluation alone. On a small "
            "validation set one lucky evaluation otherwise decides which model is kept."
        },
    )
    early_checkpoint_fraction: float = field(
        default=0.2,
        metadata={
            "help": "Warn when the kept (best) checkpoint comes from the first this fraction of training: validation "
            "picked a barely trained model, often noise on a small validation set. 0 turns the warning off."
        },
    )
    torch_num_threads: str = field(
        default="auto",
        metadata={
            "help": "torch intra-op threads for training and evaluation on CPU: a number, or auto (one thread for "
            "models under 10 M parameters, whose steps are too small to share across cores; torch's default for "
            "larger ones). Ignored on an accelerator."
        },
    )

    def __post_init__(self):
        # Before super(): these values pass TrainingArguments, then train nothing (yet a model, card and test
        # metrics are written) or fail inside torch once the data is prepared.
        if self.max_steps == 0:
            raise ValueError("max_steps must be > 0, or -1 (the default) to train num_train_epochs; got 0.")
        if self.max_steps < 0 and not self.num_train_epochs > 0:
            raise ValueError(f"num_train_epochs must be > 0 (or give max_steps > 0), got {self.num_train_epochs}.")
        for key in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}.")
        if not self.learning_rate > 0:  # also catches NaN
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}.")
        # AdamW takes a negative decay without complaint and pushes the weights away from zero every step.
        if not self.weight_decay >= 0:  # also catches NaN
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}.")
        if self.chance_level_patience < 0:
            raise ValueError(f"chance_level_patience must be >= 0 (0: no warning), got {self.chance_level_patience}.")
        if not 0.0 <= self.chance_level_tolerance < 1.0:
            raise ValueError(f"chance_level_tolerance must be in [0, 1), got {self.chance_level_tolerance}.")
        if self.best_model_smoothing < 1:
            raise ValueError(f"best_model_smoothing must be >= 1 (1: no smoothing), got {self.best_model_smoothing}.")
        if not 0.0 <= self.early_checkpoint_fraction < 1.0:
            raise ValueError(f"early_checkpoint_fraction must be in [0, 1), got {self.early_checkpoint_fraction}.")
        from ..utils.threads import parse_num_threads

        parse_num_threads(self.torch_num_threads)  # "auto" or a positive whole number, named in the error
        # Pinned memory only speeds up copies to an accelerator; without one torch ignores the flag and warns at
        # every DataLoader iterator (each epoch and each evaluation). TrainingArguments turns it off for use_cpu
        # the same way; here also on a machine that has no accelerator at all.
        if self.dataloader_pin_memory and not torch.accelerator.is_available():
            self.dataloader_pin_memory = False
        super().__post_init__()
        if self.n_bootstrap < 0:
            raise ValueError(f"n_bootstrap must be >= 0, got {self.n_bootstrap}.")

