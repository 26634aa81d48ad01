"""The training entry, in stages: logging -> data -> model -> splits -> collators -> fit -> evaluate ->
summary -> plots -> card -> push.

Every method shares this flow and plugs in through the hooks of `hf_mtkd.training.method.Method` or
`SelfFittingMethod` (registered in `hf_mtkd.registry`); a hook returns what it makes and the flow passes it on.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from typing import Optional

import datasets
import transformers
from transformers import Trainer

from ..data import prepare_data
from ..hub.card import write_run_card
from ..hub.push import push_to_hub as push_folder_to_hub
from ..plots import matplotlib_available, plot_summary
from ..run_summary import SUMMARY_FILE, RunSummary, run_provenance
from ..utils.provenance import git_commit
from ..utils.threads import apply_num_threads
from ..windowing import add_length_column, save_window_to_config
from .evaluation import report_split
from .method import MethodBase, RunSetup, SelfFittingMethod
from .outputs import (
    last_complete_checkpoint,
    require_complete_checkpoint,
    require_writable_dir,
    save_training_args_json,
)
from .run_record import (
    RunMismatchError,
    check_checkpoint,
    finish_record,
    read_record,
    remove_finished_run,
    remove_unfinished_run,
    run_state,
    start_record,
    state_differences,
)

logger = logging.getLogger("hf_mtkd")

#: `run_summary.json`, written last: a folder holding it holds a finished run.
FINISHED_MARKER = SUMMARY_FILE
#: Splits every method's `prepare_splits` must return (it may add more).
REQUIRED_SPLITS = ("train", "validation", "test")


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


def check_fsdp_device(training_args, environ=os.environ) -> None:
    """Refuse FSDP on CPU: accelerate keeps the FSDP plugin only for accelerator devices (multi-GPU, NPU, XPU, ...),
    so on CPU the Trainer would silently train plain DDP over gloo instead."""
    requested = bool(training_args.fsdp) or environ.get("ACCELERATE_USE_FSDP", "false").lower() in ("1", "true", "yes")
    if requested and training_args.device.type == "cpu":
        raise ValueError(
            "FSDP was asked for (--fsdp or an FSDP accelerate config) on CPU, where accelerate does not run it: the "
            "student would be trained with plain DDP. On CPU use recipes/accelerate_configs/ddp.yaml with --use_cpu "
            "true; FSDP needs GPUs."
        )


def check_output_dir(training_args, state: dict) -> Optional[str]:
    """Check what is in `output_dir` against the run about to start (`state`: `run_record.run_state`) and record
    the run there; return the checkpoint to resume from.

    A finished run is replaced only with `overwrite_output_dir`, and then only the files it wrote are removed.
    A checkpoint is resumed (explicitly or found in the folder) only when its record names this run's recipe
    and data; one from another run is an error naming what differs. Nothing is written before every check passed.
    """
    out = training_args.output_dir
    overwrite = training_args.overwrite_output_dir
    if training_args.should_save:
        require_writable_dir(out)
    explicit = training_args.resume_from_checkpoint
    if explicit:
        require_complete_checkpoint(explicit)
        check_checkpoint(explicit, state)
    record = read_record(out)
    finished = os.path.exists(os.path.join(out, FINISHED_MARKER))
    if finished and not overwrite:
        raise FileExistsError(
            f"output_dir {out!r} holds a finished run ({FINISHED_MARKER}); pass --overwrite_output_dir true to "
            f"replace it."
        )
    if finished:
        if record is None:
            raise FileExistsError(
                f"output_dir {out!r} holds a finished run without the record of the files it wrote (written by an "
                "older hf_mtkd, or not by hf_mtkd), so overwriting could delete files that are not the run's. "
                "Remove that run by hand, or choose another output_dir."
            )
        if training_args.should_save:
            # Nothing of the old run may end up in the new one's card, figures or upload; nothing else goes.
            removed, kept = remove_finished_run(out, record, FINISHED_MARKER)
            logger.warning("Overwriting the finished run in %s (overwrite_output_dir): removed the %d file(s) it "
                           "wrote%s.", out, len(removed),
                           f"; kept {len(kept)} file(s) hf_mtkd did not write there" if kept else "")
        record = None
    elif record is not None and state_differences(record, state):
        if not overwrite:
            raise RunMismatchError(
                f"output_dir {out!r} holds an unfinished run of another " + "; ".join(state_differences(record, state))
                + ". Pass --overwrite_output_dir true to replace it (its checkpoints are removed), or choose another "
                "output_dir."
            )
        if training_args.should_save:
            removed = remove_unfinished_run(out, record)
            logger.warning("Overwriting the unfinished run in %s: removed %s.", out, ", ".join(removed))
        record = None
    resume = explicit
    if explicit is None and not overwrite:
        last = last_complete_checkpoint(out)  # a checkpoint the run died while writing does not count
        if last is not None:
            check_checkpoint(last, state)
            resume = last
    if resume is not None:
        logger.warning("Resuming from %s: its recipe and data match this run's.", resume)
    if training_args.should_save and record is None:
        start_record(out, state)
    return resume


def run(
    method: MethodBase,
    config_path: Optional[str] = None,
    args: Optional[list[str]] = None,
    recipe: Optional[dict] = None,
    source: Optional[str] = None,
) -> RunSummary:
    """Train and evaluate with `method` from a recipe (file or dict) and/or flags; returns the run summary."""
    from ..config_parser import load_recipe, parse_config

    if recipe is None and config_path:
        recipe = load_recipe(config_path)
    parsed = parse_config(method.dataclass_types(), source or config_path, args, recipe=recipe)
    model_args, data_args, training_args, *extra_args = parsed
    setup_logging(training_args)
    check_world_size(training_args)
    check_fsdp_device(training_args)
    resume_from = check_output_dir(training_args, run_state(parsed))
    transformers.set_seed(training_args.seed)
    setup = RunSetup(model_args, data_args, training_args, tuple(extra_args))

    # Data. The sampling rate comes from the student's feature extractor (so build its config first), or from a
    # method that fits on its own.
    self_fitting = isinstance(method, SelfFittingMethod)
    rate = method.sampling_rate(setup) if self_fitting else method.probe_feature_extractor(setup).sampling_rate
    with training_args.main_process_first(desc="dataset preprocessing"):
        prepared = prepare_data(data_args, rate, method.data_checks(setup))
    splits, label_names, languages = prepared.splits, prepared.label_names, prepared.languages
    logger.info("Labels %s; languages %s; sizes %s", label_names, languages, {k: len(v) for k, v in splits.items()})
    setup = dataclasses.replace(setup, label_names=tuple(label_names), languages=tuple(languages))

    # Model, the method's splits and batches.
    if self_fitting:
        model, feature_extractor = method.build_model(setup), None
    else:
        model, feature_extractor = method.build_model(setup)
        rate = feature_extractor.sampling_rate
    num_threads = apply_num_threads(training_args.torch_num_threads, model, training_args.device)
    if self_fitting:
        splits = method.prepare_splits(setup, splits, model=model)
    else:
        splits = method.prepare_splits(setup, splits, model=model, feature_extractor=feature_extractor)
    missing = [name for name in REQUIRED_SPLITS if name not in splits]
    if missing:
        raise ValueError(f"{type(method).__name__}.prepare_splits returned no {missing} split(s); it returned "
                         f"{list(splits)}.")
    # Evaluation and predict cut whole clips into windows of the training length, read from the model's config.
    if getattr(model, "config", None) is not None:  # a method may fit something that is no transformers model
        save_window_to_config(model.config, setup.window_seconds)
    if training_args.train_sampling_strategy == "group_by_length":  # batches of similar lengths: little padding
        splits["train"] = add_length_column(splits["train"], setup.max_samples(rate), training_args.length_column_name)

    # Fit (and save): the standard Trainer flow, or the method's own.
    if self_fitting:
        collators = None
        fitted = method.fit(setup, model=model, splits=splits, resume_from_checkpoint=resume_from)
    else:
        collators = method.make_collators(setup, splits, feature_extractor=feature_extractor)
        fitted = method.fit(setup, model=model, feature_extractor=feature_extractor, splits=splits,
                            collators=collators, resume_from_checkpoint=resume_from)
    is_trainer = isinstance(fitted, Trainer)
    is_main = fitted.is_world_process_zero() if is_trainer else training_args.process_index == 0
    # A SERTrainer reads them from its log history; a method that fits on its own may hand them over on its Predictor.
    training_warnings = list(getattr(fitted, "training_warnings", None) or [])

    # Evaluate on validation and test (the test split is never used for model selection).
    results = {
        split: report_split(
            fitted, splits[split], label_names, split=split, language_column=data_args.language_column_name,
            n_bootstrap=training_args.n_bootstrap, seed=training_args.seed, is_main_process=is_main,
            output_dir=training_args.output_dir, title=f"{method.display_name}: {split} ({len(splits[split])} clips)",
            data_report=prepared.report, training_warnings=training_warnings,
        )
        for split in ("validation", "test")
    }
    # A split's prediction collapse (added by report_split) goes with the run's other training warnings.
    training_warnings += [w for split in ("validation", "test") for w in results[split].get("training_warnings", ())
                          if w not in training_warnings]
    if self_fitting:
        extras = method.summary_extras(setup, fitted, splits=splits) or {}
    else:
        extras = method.summary_extras(setup, fitted, splits=splits, feature_extractor=feature_extractor,
                                       collators=collators) or {}
    summary = RunSummary(
        method=method.name,
        label_names=list(label_names),
        languages=list(languages),
        sizes={name: len(ds) for name, ds in splits.items()},
        results=results,
        method_info=method.card_info(),
        data_report=prepared.report,
        training_warnings=training_warnings,
        torch_num_threads=num_threads,
        resumed_from=os.path.basename(os.path.normpath(resume_from)) if resume_from else None,
        commit=git_commit(),
        extras=dict(extras),
        **run_provenance(model_args, data_args),
    )
    summary = dataclasses.replace(summary, card_sections=list(method.card_sections(setup, summary)))

    if is_trainer:
        fitted.run_summary = summary  # what its create_model_card (and so its stock push_to_hub) reports
    if is_main:
        out = training_args.output_dir
        plot_summary(summary, out, skip_without_matplotlib=True)  # pictures first: the card embeds them
        if matplotlib_available():
            method.figures(summary, out)
        if is_trainer:
            fitted.create_model_card()
        else:
            save_training_args_json(training_args, out)
            write_run_card(summary, out, args=training_args.to_dict(), repo_id=training_args.hub_model_id)
        write_exported_models(method.exported_models(setup, summary), training_args)
        finish_record(out)  # the files this run wrote: what --overwrite_output_dir may remove, and nothing else
        summary.save(os.path.join(out, FINISHED_MARKER))  # last: marks the run finished
    if training_args.push_to_hub:
        if is_trainer:
            fitted.push_to_hub()  # the stock flow: save, create_model_card (from run_summary), upload
        elif is_main:
            push_folder_to_hub(training_args.output_dir, training_args.hub_model_id or os.path.basename(
                os.path.abspath(training_args.output_dir)), private=training_args.hub_private_repo,
                token=training_args.hub_token, revision=training_args.hub_revision)
    return summary


def write_exported_models(exported: dict, training_args) -> None:
    """Give each model a method exported into a sub-folder of `output_dir` what a run's folder has, so that
    `hf-mtkd push <folder>` publishes it like any run: its run summary, the training arguments (JSON) and its card
    (the main run's Hub id does not name it, so its card names the folder)."""
    args = {key: value for key, value in training_args.to_dict().items() if key != "hub_model_id"}
    for relative, summary in exported.items():
        folder = os.path.join(training_args.output_dir, relative)
        if os.path.isabs(relative) or os.path.normpath(relative).startswith(".."):
            raise ValueError(f"Exported model folder {relative!r} is not inside the output_dir.")
        if not os.path.isfile(os.path.join(folder, "config.json")):
            raise FileNotFoundError(f"The method reported a model exported to {folder}, but it holds no config.json.")
        summary.save(os.path.join(folder, SUMMARY_FILE))
        save_training_args_json(training_args, folder)
        write_run_card(summary, folder, args=args)
