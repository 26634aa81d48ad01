"""The Trainer every hf_mtkd method builds on."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
from collections import defaultdict
from typing import ClassVar, Optional

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from ..data import AudioClassificationCollator
from ..hub.card import StudentCard
from ..registry import MethodInfo, Paper
from ..utils.atomic import write_json_atomic
from ..utils.distributed import pool_totals
from ..windowing import WindowedEvaluationMixin
from .chance import ChanceLevelCallback
from .console import ConcisePrinterCallback, ConciseProgressCallback
from .outputs import (
    STAGING_DIR,
    TRAINER_STATE_NAME,
    disk_full_error,
    is_checkpoint_dir,
    publish_staged,
    save_training_args_json,
)
from .run_record import copy_record_into

#: transformers orders checkpoints for deletion by modification time and, when the oldest and the newest are less
#: than a second apart (a tiny model saves faster than that), logs "mtime may not be reliable on this filesystem"
#: and orders them by step number, which is the right order for the Trainer's checkpoint-<step> folders: a warning
#: about the filesystem that nobody can act on. It is dropped; every other transformers message passes. (Issue 15
#: calls the mtime warnings datasets': datasets 5.2 logs none -- it only hashes file mtimes into fingerprints --
#: this is the only one in our runs, printed between the datasets progress bars of the evaluations.)
_CHECKPOINT_MTIME_WARNING = "mtime may not be reliable on this filesystem"


def _drop_checkpoint_mtime_warning(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(_CHECKPOINT_MTIME_WARNING)


logging.getLogger("transformers.trainer_utils").addFilter(_drop_checkpoint_mtime_warning)


class SERTrainer(WindowedEvaluationMixin, Trainer):
    """Trainer for audio classification that keeps side information out of the model call,
    evaluates and predicts whole clips by the window rule in the model's config (hf_mtkd.windowing)
    and logs extra per-step numbers (TRL style: `self._metrics[mode][name]` lists,
    averaged over steps and processes and cleared in `log`).

    Without a `data_collator`, rows holding `waveform` and `labels` are batched by the student's feature
    extractor (`processing_class`). The model card (`create_model_card`, which the stock `push_to_hub`
    calls) takes the method's name, tags and paper from the class attributes below, the hyperparameters from
    `args`, and the results from `run_summary` when the training entry has set it.

    Gradient accumulation: every hf_mtkd loss, and the loss of a stock audio classifier, is a mean over its
    micro-batch; none is normalised by the Trainer's `num_items_in_batch`. So the model is not handed
    `num_items_in_batch` (stock classifiers take `**kwargs` and would be counted as using it) and the Trainer
    divides each micro-batch loss by the accumulation steps (`loss_is_scaled_for_ga` stays undecided, so a
    `compute_loss_func` that does normalise by `num_items_in_batch` keeps the Trainer's own rule).
    """

    #: What the card says about the method (TRL's convention); subclasses set their own.
    _name: ClassVar[str] = "fine-tuning"
    _description: ClassVar[str] = "Plain fine-tuning with cross-entropy on the emotion labels."
    _paper: ClassVar[Optional[Paper]] = None
    #: Hub tags; the first names the method (the recipe key) when no run summary does.
    _tag_names: ClassVar[tuple[str, ...]] = ("finetune",)
    #: Batch keys that carry side information for losses or logs, never model inputs.
    side_keys: ClassVar[tuple[str, ...]] = ("language_id",)

    def __init__(self, model=None, args=None, data_collator=None, train_dataset=None, eval_dataset=None,
                 processing_class=None, *, eval_data_collator=None, **kwargs):
        if data_collator is None and processing_class is not None and hasattr(processing_class, "sampling_rate"):
            data_collator = self.default_collator(args, processing_class)
        super().__init__(model=model, args=args, data_collator=data_collator, train_dataset=train_dataset,
                         eval_dataset=eval_dataset, processing_class=processing_class, **kwargs)
        if self.compute_loss_func is None:
            # Set from the forward's `**kwargs`, not from what the model does with them: with it True the
            # Trainer takes a per-batch mean for a loss already summed over the accumulated batch (the micro-batch
            # losses add up) and, under DDP, multiplies it by the number of processes.
            self.model_accepts_loss_kwargs = False
        # Evaluation batches must not be randomly cropped; the training collator may be.
        self.eval_data_collator = eval_data_collator
        self._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
        #: The finished run's summary (`hf_mtkd.run_summary.RunSummary`), set by the training entry for the card.
        self.run_summary = None
        self.add_callback(CollatorEpochCallback(self))
        # One short line per log on the console (every number still goes to the log history and report_to).
        for stock, concise in ((ProgressCallback, ConciseProgressCallback), (PrinterCallback, ConcisePrinterCallback)):
            if any(type(callback) is stock for callback in self.callback_handler.callbacks):
                self.remove_callback(stock)
                self.add_callback(concise)
        num_labels = getattr(getattr(self.model, "config", None), "num_labels", None)
        patience = getattr(self.args, "chance_level_patience", 3)  # any TrainingArguments: the SER defaults
        if patience > 0 and num_labels is not None and num_labels >= 2:
            self.add_callback(
                ChanceLevelCallback(num_labels, patience, getattr(self.args, "chance_level_tolerance", 0.02))
            )

    def default_collator(self, args, feature_extractor):
        """The collator used when none is given: the student's feature extractor over `waveform` rows."""
        return AudioClassificationCollator(
            feature_extractor=feature_extractor, sampling_rate=feature_extractor.sampling_rate,
            seed=(args or TrainingArguments).seed,  # TrainingArguments.seed: the default the Trainer will use
        )

    @classmethod
    def method_info(cls) -> MethodInfo:
        """The card's text about the method, from the class attributes."""
        return MethodInfo(display_name=cls._name, description=cls._description, paper=cls._paper,
                          tags=tuple(cls._tag_names))

    def create_optimizer(self, model=None):
        """The Trainer's optimizer; parameters to which the model gives a learning rate of their own (its
        `parameter_learning_rates()`, e.g. a pretrained encoder fine-tuned slower than its head) get their own
        groups."""
        fresh = self.optimizer is None
        optimizer = super().create_optimizer(model)
        if fresh:
            split_learning_rates(optimizer, self.accelerator.unwrap_model(self.model if model is None else model))
        return optimizer

    def _get_dataloader(
        self, dataset, description, batch_size, sampler_fn=None, is_training=False, dataloader_key=None
    ):
        if is_training or self.eval_data_collator is None:
            return super()._get_dataloader(dataset, description, batch_size, sampler_fn, is_training, dataloader_key)
        train_collator, self.data_collator = self.data_collator, self.eval_data_collator
        try:
            return super()._get_dataloader(dataset, description, batch_size, sampler_fn, is_training, dataloader_key)
        finally:
            self.data_collator = train_collator

    def split_inputs(self, inputs: dict) -> tuple[dict, dict]:
        """(model inputs, side information): the batch split by `side_keys`."""
        model_inputs = {k: v for k, v in inputs.items() if k not in self.side_keys}
        side = {k: v for k, v in inputs.items() if k in self.side_keys}
        return model_inputs, side

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        model_inputs, _ = self.split_inputs(inputs)
        return super().compute_loss(
            model, model_inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
        )

    def create_model_card(self, language=None, license=None, tags=None, model_name=None, finetuned_from=None,
                          tasks=None, dataset_tags=None, dataset=None, dataset_args=None) -> None:
        """Write the hf_mtkd model card (README.md) into args.output_dir, from what is in memory: the run
        summary (when set), the arguments, the model's config and the figures in the folder. The stock
        `push_to_hub` calls this before it uploads. Arguments as in `Trainer.create_model_card`."""
        if not self.is_world_process_zero():
            return
        overrides = {"license": license, "model_name": model_name, "base_model": finetuned_from}
        if language is not None:
            overrides["languages"] = [language] if isinstance(language, str) else list(language)
        if tags is not None:
            overrides["extra_tags"] = [tags] if isinstance(tags, str) else list(tags)
        if dataset is not None:
            overrides["hub_datasets"] = [dataset] if isinstance(dataset, str) else list(dataset)
        overrides = {key: value for key, value in overrides.items() if value is not None}
        if self.run_summary is None:  # a trainer used on its own: the method is this class
            overrides.update(method=self._tag_names[0], method_info=self.method_info(), sections=self.card_sections())
        model = self.accelerator.unwrap_model(self.model)
        card = StudentCard.from_run(
            self.run_summary,
            output_dir=self.args.output_dir,
            args=self.args.to_dict(),
            model_config=model.config.to_dict() if hasattr(model, "config") else None,
            repo_id=getattr(self, "hub_model_id", None) or self.args.hub_model_id,
            **overrides,
        )
        card.save(self.args.output_dir)

    def card_sections(self) -> list:
        """Card sections of a trainer used on its own (no run summary; with the training entry the method's
        `card_sections` hook gives them). Called on the main process only."""
        return []

    @property
    def training_warnings(self) -> list[str]:
        """What went wrong in training that the results should carry, read from the state and log history (a
        resumed run counts all): validation UR at chance level for `chance_level_patience` evaluations in a row,
        and a kept checkpoint from the first `early_checkpoint_fraction` of training."""
        callback = next((c for c in self.callback_handler.callbacks if isinstance(c, ChanceLevelCallback)), None)
        found = callback.warnings(self.state.log_history) if callback is not None else []
        early = early_checkpoint_warning(self.state, self.args)
        return found + ([early] if early else [])

    def _determine_best_metric(self, metrics, trial) -> bool:
        """The Trainer's choice of the best checkpoint, made on the mean of the last `best_model_smoothing`
        evaluations of `metric_for_best_model` (the current one included), so that one lucky evaluation on a small
        validation set does not decide which model is kept."""
        k = getattr(self.args, "best_model_smoothing", 1)
        key = self.args.metric_for_best_model
        if k <= 1 or key is None:
            return super()._determine_best_metric(metrics, trial)
        key = key if key.startswith("eval_") else f"eval_{key}"
        if key not in metrics:
            return super()._determine_best_metric(metrics, trial)  # the Trainer's error naming the metric
        smoothed = smoothed_metric(self.state.log_history, key, k, current=metrics[key])
        return super()._determine_best_metric({**metrics, key: smoothed}, trial)

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
        # Every process calls log() at the same points; each has its own batches (and, per language,
        # its own set of names): pool (sum, count) over processes so the line covers all samples.
        totals = pool_totals(totals, self.accelerator.num_processes)
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
        try:
            super().save_model(staging, _internal_call=True)
        except (OSError, RuntimeError) as err:
            if self.args.should_save and os.path.isdir(staging):
                shutil.rmtree(staging)  # half-written: the model files in output_dir are still the last good ones
            full = disk_full_error(err, output_dir, "model")
            if full is not None:
                raise full from err
            raise
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            publish_staged(staging, output_dir)
        self.accelerator.wait_for_everyone()
        if self.args.push_to_hub and not _internal_call:
            self.push_to_hub(commit_message="Model save", revision=self.args.hub_revision)

    def _save_checkpoint(self, model, trial) -> None:
        """The Trainer's checkpoint, given the run's record first (which recipe and data made it, so that only a
        matching run resumes it). A save that fails (a full disk, say) removes the partial checkpoint, so that no
        resume picks it up, and says which folder it was writing."""
        from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

        folder = os.path.join(self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
        try:
            if self.args.should_save:
                copy_record_into(folder, self.args.output_dir)
            super()._save_checkpoint(model, trial)
        except (OSError, RuntimeError) as err:
            if self.args.should_save and os.path.isdir(folder):
                shutil.rmtree(folder)
            full = disk_full_error(err, folder, "checkpoint (the partial checkpoint was removed)")
            if full is not None:
                raise full from err
            raise

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
        if self.args.should_save:
            save_training_args_json(self.args, output_dir if output_dir is not None else self.args.output_dir)

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


def smoothed_metric(log_history, key: str, k: int, current: float) -> float:
    """The mean of `key` over the last `k` evaluations: the `k - 1` before in `log_history` and `current` (the one
    being judged; the Trainer logs it before it judges it, so it is not counted twice). Fewer at the start."""
    logged = [entry[key] for entry in log_history if key in entry]
    if logged and logged[-1] == current:
        logged = logged[:-1]
    window = logged[-(k - 1):] + [current] if k > 1 else [current]
    return float(sum(window) / len(window))


def early_checkpoint_warning(state, args) -> Optional[str]:
    """A warning when the kept (best) checkpoint comes from the first `early_checkpoint_fraction` of training."""
    fraction = getattr(args, "early_checkpoint_fraction", 0.0)
    best, total = state.best_global_step, state.max_steps
    if not (fraction > 0 and getattr(args, "load_best_model_at_end", False) and best and total):
        return None
    if best > fraction * total:
        return None
    return (
        f"The kept checkpoint comes from step {best} of {total} ({100 * best / total:.0f}% of training; "
        f"{args.metric_for_best_model} {state.best_metric:.4g} on validation): a barely trained model was selected, "
        "often a lucky evaluation on a small validation set. Consider best_model_smoothing, a larger validation "
        "split, or load_best_model_at_end: false."
    )


def split_learning_rates(optimizer: torch.optim.Optimizer, model: torch.nn.Module) -> None:
    """Move the parameters named in `model.parameter_learning_rates()` ({name: lr}; absent or empty: nothing to do)
    into groups of their own with that learning rate, each keeping the rest of its group's settings (weight decay).
    Before the first step, so the scheduler scales every group from its own rate."""
    own_rates = getattr(model, "parameter_learning_rates", None)
    own_rates = own_rates() if callable(own_rates) else {}
    if not own_rates:
        return
    rate_of = {id(p): own_rates[name] for name, p in model.named_parameters() if name in own_rates}
    for group in list(optimizer.param_groups):
        moved = defaultdict(list)
        for param in group["params"]:
            if id(param) in rate_of:
                moved[rate_of[id(param)]].append(param)
        if not moved:
            continue
        group["params"] = [p for p in group["params"] if id(p) not in rate_of]
        for lr, params in moved.items():
            optimizer.add_param_group(
                {**{k: v for k, v in group.items() if k != "params"}, "params": params, "lr": lr}
            )
    optimizer.param_groups[:] = [group for group in optimizer.param_groups if group["params"]]


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
