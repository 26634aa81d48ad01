"""The Trainer every hf_mtkd method builds on."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections import defaultdict

import torch
from accelerate.utils import gather_object
from transformers import Trainer, TrainerCallback

from ..windowing import WindowedEvaluationMixin
from .outputs import STAGING_DIR, TRAINER_STATE_NAME, is_checkpoint_dir, publish_staged, write_json_atomic

# Batch keys that carry side information for losses, never model inputs.
SIDE_KEYS = ("language_id", "teacher_logits", "teacher_inputs")


class SERTrainer(WindowedEvaluationMixin, Trainer):
    """Trainer for audio classification that keeps side information out of the model call,
    evaluates and predicts whole clips by the window rule in the model's config (hf_mtkd.windowing)
    and logs extra per-step numbers (TRL style: `self._metrics[mode][name]` lists,
    averaged over steps and processes and cleared in `log`)."""

    def __init__(self, *args, eval_data_collator=None, **kwargs):
        super().__init__(*args, **kwargs)
        # Evaluation batches must not be randomly cropped; the training collator may be.
        self.eval_data_collator = eval_data_collator
        self._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
        self.add_callback(CollatorEpochCallback(self))

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

    def push_to_hub(self, commit_message="End of training", blocking=True, token=None, revision=None, private=None, **kwargs):
        """Upload model, feature extractor and the hf_mtkd model card (never training_args.bin)."""
        from ..hub.push import push_trainer_to_hub

        return push_trainer_to_hub(self, commit_message=commit_message, token=token, revision=revision, private=private)

    def record(self, name: str, value) -> None:
        """Store a per-step number for the next log line."""
        mode = "train" if self.model.training else "eval"
        if isinstance(value, torch.Tensor):
            value = value.detach().float().mean().item()
        self._metrics[mode][name].append(float(value))

    def log(self, logs: dict, start_time=None) -> None:
        mode = "eval" if any(key.startswith("eval_") for key in logs) else "train"
        prefix = "eval_" if mode == "eval" else ""
        totals = {name: (sum(values), len(values)) for name, values in self._metrics[mode].items() if values}
        if self.accelerator.num_processes > 1:
            # Every process calls log() at the same points; each has its own batches (and, per language,
            # its own set of names): pool (sum, count) over processes so the line covers all samples.
            pooled: dict[str, list] = {}
            for part in gather_object([totals]):
                for name, (total, count) in part.items():
                    entry = pooled.setdefault(name, [0.0, 0])
                    entry[0] += total
                    entry[1] += count
            totals = pooled
        for name, (total, count) in totals.items():
            logs[f"{prefix}{name}"] = total / count
        self._metrics[mode].clear()
        super().log(logs, start_time)

    # Crash-safe outputs (see outputs.py): a killed process never leaves a half-written file behind.

    def save_model(self, output_dir=None, _internal_call: bool = False) -> None:
        """Save into a staging folder, then move each file into `output_dir` with `os.replace`.

        `checkpoint-N` folders are written in place: a checkpoint counts as complete once its
        trainer_state.json, written last, exists. `_internal_call` only means "do not push"."""
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if is_checkpoint_dir(output_dir):
            return super().save_model(output_dir, _internal_call=_internal_call)
        staging = os.path.join(output_dir, STAGING_DIR)
        if self.args.should_save and os.path.exists(staging):
            shutil.rmtree(staging)  # left by a process that died while saving
        self.accelerator.wait_for_everyone()
        super().save_model(staging, _internal_call=True)
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            publish_staged(staging, output_dir)
        self.accelerator.wait_for_everyone()
        if self.args.push_to_hub and not _internal_call:
            self.push_to_hub(commit_message="Model save", revision=self.args.hub_revision)

    def _save(self, output_dir=None, state_dict=None) -> None:
        # The Trainer pickles its arguments (training_args.bin) beside the weights: never with a Hub token.
        tokens = {f.name: getattr(self.args, f.name) for f in dataclasses.fields(self.args)
                  if f.name.endswith("_token") and getattr(self.args, f.name, None)}
        for name in tokens:
            setattr(self.args, name, None)
        try:
            super()._save(output_dir, state_dict)
        finally:
            for name, value in tokens.items():
                setattr(self.args, name, value)

    def save_state(self) -> None:
        if self.is_world_process_zero():
            path = os.path.join(self.args.output_dir, TRAINER_STATE_NAME)
            write_json_atomic(dataclasses.asdict(self.state), path)  # what TrainerState.save_to_json writes

    def save_metrics(self, split, metrics, combined: bool = True) -> None:
        if not self.is_world_process_zero():
            return
        write_json_atomic(metrics, os.path.join(self.args.output_dir, f"{split}_results.json"), indent=4)
        if combined:
            path = os.path.join(self.args.output_dir, "all_results.json")
            all_metrics = {}
            if os.path.exists(path):
                with open(path, encoding="utf-8") as handle:
                    all_metrics = json.load(handle)
            all_metrics.update(metrics)
            write_json_atomic(all_metrics, path, indent=4)


class CollatorEpochCallback(TrainerCallback):
    """Tells the training collator which epoch starts: its random crops depend on (seed, epoch, clip),
    so a run resumed mid-epoch crops as the uninterrupted run did."""

    def __init__(self, trainer: Trainer):
        self.trainer = trainer

    def on_epoch_begin(self, args, state, control, **kwargs):
        set_epoch = getattr(self.trainer.data_collator, "set_epoch", None)
        if set_epoch is not None:
            # state.epoch is e.0 at the start of epoch e, e.f when resuming in the middle of it.
            set_epoch(int((state.epoch or 0.0) + 1e-6))
