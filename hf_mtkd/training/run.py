"""The training entry, in stages: logging -> data -> model -> trainer -> train -> save -> evaluate.

Every method (fine-tuning, MTKD, self-distillation) shares this flow and plugs in its own
argument classes and trainer through a `Method` (see `hf_mtkd.methods`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import sys
from dataclasses import dataclass
from typing import Any, Optional

import datasets
import transformers

from ..arguments import DataArguments, ModelArguments
from ..data import (
    AudioClassificationCollator,
    load_raw_dataset,
    make_splits,
    prepare_audio_dataset,
    select_labels,
)
from ..hub.card import run_provenance, write_model_card
from ..plots import plot_run
from ..windowing import add_length_column, effective_window_seconds, save_window_to_config
from .evaluation import make_compute_metrics, report_split
from .outputs import last_complete_checkpoint

logger = logging.getLogger("hf_mtkd")

FINISHED_MARKER = "run_summary.json"


@dataclass
class RunContext:
    """What a method's trainer factory gets: parsed arguments, prepared splits, labels, the student."""

    model_args: ModelArguments
    data_args: DataArguments
    training_args: Any
    extra_args: tuple
    splits: Any
    label_names: list[str]
    languages: list[str]
    model: Any
    feature_extractor: Any
    collator: Any
    eval_collator: Any


def setup_logging(training_args) -> None:
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    level = training_args.get_process_log_level()
    logging.getLogger("hf_mtkd").setLevel(level)
    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(level)


def check_world_size(training_args) -> None:
    """Refuse a multi-process launch the Trainer does not see: each process would train on all the data alone."""
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and training_args.world_size != launched:
        raise RuntimeError(
            f"{launched} processes were launched but the Trainer sees {training_args.world_size}, so each would train "
            "a model of its own. On a machine without GPUs pass --use_cpu true (data-parallel over gloo)."
        )


def check_output_dir(training_args) -> Optional[str]:
    """Refuse to overwrite a finished run; return the checkpoint to resume an unfinished one from."""
    out = training_args.output_dir
    if not os.path.isdir(out):
        return None
    if os.path.exists(os.path.join(out, FINISHED_MARKER)) and not training_args.overwrite_output_dir:
        raise FileExistsError(
            f"output_dir {out!r} holds a finished run ({FINISHED_MARKER}); pass --overwrite_output_dir true to replace it."
        )
    if os.path.exists(os.path.join(out, FINISHED_MARKER)) and training_args.should_save:
        # Overwriting: the old marker and checkpoints go first, so that a crash of the new run leaves
        # an unfinished folder that resumes the new run, never a mix that looks finished.
        os.remove(os.path.join(out, FINISHED_MARKER))
        for name in os.listdir(out):
            if name.startswith("checkpoint-") and os.path.isdir(os.path.join(out, name)):
                shutil.rmtree(os.path.join(out, name))
        logger.warning("Overwriting the finished run in %s (overwrite_output_dir).", out)
    if training_args.resume_from_checkpoint is None and not training_args.overwrite_output_dir:
        last = last_complete_checkpoint(out)  # a checkpoint the run died while writing does not count
        if last is not None:
            logger.info("Resuming the unfinished run in %s from %s.", out, last)
            return last
    return training_args.resume_from_checkpoint


def prepare_data(data_args: DataArguments, sampling_rate: int):
    raw = load_raw_dataset(data_args)
    raw, label_names = select_labels(raw, data_args)
    splits = make_splits(raw, data_args)
    splits = prepare_audio_dataset(splits, data_args, sampling_rate, label_names)
    column = data_args.language_column_name
    languages = sorted(set(splits["train"][column])) if column and column in splits["train"].column_names else []
    return splits, label_names, languages


def run(
    method,
    config_path: Optional[str] = None,
    args: Optional[list[str]] = None,
    recipe: Optional[dict] = None,
    source: Optional[str] = None,
) -> dict:
    """Train and evaluate with `method` from a recipe (file or dict) and/or flags; returns the run summary."""
    from ..config_parser import load_recipe, parse_config

    if recipe is None and config_path:
        recipe = load_recipe(config_path)
    parsed = parse_config(method.dataclass_types(), source or config_path, args, recipe=recipe)
    model_args, data_args, training_args, *extra_args = parsed
    setup_logging(training_args)
    check_world_size(training_args)
    resume_from = check_output_dir(training_args)
    transformers.set_seed(training_args.seed)

    # Data. The sampling rate comes from the student's feature extractor, so build its config first.
    model_probe_fe = method.probe_feature_extractor(model_args, extra_args)
    with training_args.main_process_first(desc="dataset preprocessing"):
        splits, label_names, languages = prepare_data(data_args, model_probe_fe.sampling_rate)
    logger.info("Labels %s; languages %s; sizes %s", label_names, languages, {k: len(v) for k, v in splits.items()})

    # Model.
    model, feature_extractor = method.build_model(model_args, extra_args, label_names)
    # Training windows; evaluation and predict cut whole clips by the same length, read from the model's config.
    window_seconds = effective_window_seconds(data_args.train_window_seconds, data_args.max_duration_seconds)
    save_window_to_config(model.config, window_seconds)
    window_samples = int(round(window_seconds * feature_extractor.sampling_rate))
    if training_args.train_sampling_strategy == "group_by_length":
        splits["train"] = add_length_column(splits["train"], window_samples, training_args.length_column_name)
    collator = AudioClassificationCollator(
        feature_extractor=feature_extractor,
        sampling_rate=feature_extractor.sampling_rate,
        language_column=data_args.language_column_name,
        language_to_id={lang: i for i, lang in enumerate(languages)} if languages else None,
        max_samples=window_samples,
        random_crop=data_args.random_crop,
        seed=training_args.seed,
    )
    eval_collator = dataclasses.replace(collator, random_crop=False)
    context = RunContext(model_args, data_args, training_args, tuple(extra_args), splits, label_names, languages,
                         model, feature_extractor, collator, eval_collator)

    # Trainer, train, save.
    trainer = method.build_trainer(context, compute_metrics=make_compute_metrics(label_names))
    train_result = trainer.train(resume_from_checkpoint=resume_from)
    # _internal_call: stock Trainer would push here, before evaluation and without our card.
    trainer.save_model(_internal_call=True)  # staged and moved into place file by file (SERTrainer.save_model)
    if trainer.is_world_process_zero() and trainer.processing_class is not feature_extractor:
        feature_extractor.save_pretrained(training_args.output_dir)
    trainer.log_metrics("train", train_result.metrics)
    trainer.save_metrics("train", train_result.metrics)
    trainer.save_state()

    # Evaluate on validation and test (the test split is never used for model selection).
    results = {}
    splits = context.splits  # a method may have added columns (e.g. cached teacher logits)
    for split in ("validation", "test"):
        results[split] = report_split(
            trainer, splits[split], label_names, split=split, language_column=data_args.language_column_name,
            n_bootstrap=training_args.n_bootstrap, output_dir=training_args.output_dir,
            title=f"{method.display_name}: {split} ({len(splits[split])} clips)",
        )
    extra = method.after_training(context, trainer) or {}
    summary = {
        "method": method.name,
        "label_names": label_names,
        "languages": languages,
        "sizes": {k: len(v) for k, v in splits.items()},
        "results": results,
        **run_provenance(model_args, data_args),
        **extra,
    }
    if trainer.is_world_process_zero():
        _write_json_atomic(summary, os.path.join(training_args.output_dir, FINISHED_MARKER))
        # Pictures first, so that the card embeds them.
        plot_run(training_args.output_dir, skip_without_matplotlib=True)
        write_model_card(training_args.output_dir, repo_id=training_args.hub_model_id)
    if training_args.push_to_hub:
        trainer.push_to_hub()
    return summary


def _write_json_atomic(obj: dict, path: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(obj, handle, indent=2, sort_keys=True, default=str)
    os.replace(tmp, path)
