"""The Trainer every hf_mtkd method builds on."""

from __future__ import annotations

from collections import defaultdict

import torch
from transformers import Trainer

# Batch keys that carry side information for losses, never model inputs.
SIDE_KEYS = ("language_id", "teacher_logits", "teacher_inputs")


class SERTrainer(Trainer):
    """Trainer for audio classification that keeps side information out of the model call
    and logs extra per-step numbers (TRL style: `self._metrics[mode][name]` lists,
    averaged and cleared in `log`)."""

    def __init__(self, *args, eval_data_collator=None, **kwargs):
        super().__init__(*args, **kwargs)
        # Evaluation batches must not be randomly cropped; the training collator may be.
        self.eval_data_collator = eval_data_collator
        self._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}

    def _get_dataloader(self, dataset, description, batch_size, sampler_fn=None, is_training=False, dataloader_key=None):
        if is_training or self.eval_data_collator is None:
            return super()._get_dataloader(dataset, description, batch_size, sampler_fn, is_training, dataloader_key)
        train_collator, self.data_collator = self.data_collator, self.eval_data_collator
        try:
            return super()._get_dataloader(dataset, description, batch_size, sampler_fn, is_training, dataloader_key)
        finally:
            self.data_collator = train_collator

    @staticmethod
    def split_inputs(inputs: dict) -> tuple[dict, dict]:
        model_inputs = {k: v for k, v in inputs.items() if k not in SIDE_KEYS}
        side = {k: v for k, v in inputs.items() if k in SIDE_KEYS}
        return model_inputs, side

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        model_inputs, _ = self.split_inputs(inputs)
        return super().compute_loss(model, model_inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)

    def record(self, name: str, value) -> None:
        """Store a per-step number for the next log line."""
        mode = "train" if self.model.training else "eval"
        if isinstance(value, torch.Tensor):
            value = value.detach().float().mean().item()
        self._metrics[mode][name].append(float(value))

    def log(self, logs: dict, start_time=None) -> None:
        mode = "eval" if any(key.startswith("eval_") for key in logs) else "train"
        prefix = "eval_" if mode == "eval" else ""
        for name, values in self._metrics[mode].items():
            if values:
                logs[f"{prefix}{name}"] = sum(values) / len(values)
        self._metrics[mode].clear()
        super().log(logs, start_time)
