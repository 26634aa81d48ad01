"""Run audio_text recipes and pipelines before the method registry wires `method: audio_text` into the CLI.

`run_audio_text(recipe)` is the shared training flow for this method (parse -> data with transcripts ->
`fit_audio_text` -> save -> validation and test report -> run_summary.json); `run_pipeline(path)` runs a
pipeline YAML whose stages are `audio_text` or any method the CLI knows (those go through
`hf_mtkd.training.run`). Once `hf-mtkd train/pipeline` dispatch audio_text through the registry, this
module is only a thin duplicate of that flow and can go.

    python -m hf_mtkd.audio_text.standalone recipes/demo/audio_text/pipeline.yaml [--output_dir DIR]
    python -m hf_mtkd.audio_text.standalone recipes/iemocap/audio_text_teacher.yaml [--flag value ...]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from typing import Optional

import transformers

from ..arguments import DataArguments, ModelArguments
from ..config_parser import RecipeError, load_recipe, parse_config
from ..hub.card import run_provenance
from ..metrics import format_comparison_table
from ..pipeline import stage_recipes
from ..training.evaluation import report_split
from ..training.outputs import write_json_atomic
from ..training.run import FINISHED_MARKER, check_output_dir, check_world_size, setup_logging
from .build import load_audio_feature_extractor
from .config import AudioTextDistillationConfig, AudioTextModelArguments

logger = logging.getLogger("hf_mtkd")

METHOD = "audio_text"
DATACLASSES = (ModelArguments, DataArguments, AudioTextDistillationConfig, AudioTextModelArguments)


def run_audio_text(recipe: dict, source: Optional[str] = None, args: Optional[list[str]] = None) -> dict:
    """Train and evaluate one audio_text recipe (a flat dict of the four dataclasses' keys); returns the summary."""
    from .data import prepare_audio_text_splits
    from .schedule import fit_audio_text

    recipe = {k: v for k, v in recipe.items() if k != "method"}
    model_args, data_args, config, at_args = parse_config(DATACLASSES, source, args, recipe=recipe)
    setup_logging(config)
    check_world_size(config)
    resume_from = check_output_dir(config)
    transformers.set_seed(config.seed)

    feature_extractor = load_audio_feature_extractor(model_args, at_args)
    with config.main_process_first(desc="dataset preprocessing"):
        splits, label_names, languages, dropped = prepare_audio_text_splits(data_args, feature_extractor.sampling_rate)
    logger.info("Labels %s; languages %s; sizes %s", label_names, languages, {k: len(v) for k, v in splits.items()})

    fit = fit_audio_text(config, model_args, data_args, splits, label_names, audio_text_args=at_args,
                         languages=languages, resume_from_checkpoint=resume_from)
    trainer = fit.trainer
    trainer.save_model(_internal_call=True)  # model and processor (the trainer's processing_class)
    trainer.log_metrics("train", fit.train_metrics)
    trainer.save_metrics("train", fit.train_metrics)
    trainer.save_state()

    results = {}
    for split in ("validation", "test"):
        results[split] = report_split(
            trainer, fit.splits[split], label_names, split=split, language_column=data_args.language_column_name,
            n_bootstrap=config.n_bootstrap, output_dir=config.output_dir,
            title=f"audio_text ({fit.model.config.modalities}): {split} ({len(fit.splits[split])} clips)",
        )
    summary = {
        "method": METHOD,
        "label_names": label_names,
        "languages": languages,
        "sizes": {k: len(v) for k, v in fit.splits.items()},
        "dropped_without_transcript": dropped,
        "results": results,
        **run_provenance(model_args, data_args),
        **fit.summary_extras(),
    }
    if trainer.is_world_process_zero():
        write_json_atomic(summary, os.path.join(config.output_dir, FINISHED_MARKER), indent=2, sort_keys=True, default=str)
    return summary


def run_pipeline(config_path: str, output_dir: Optional[str] = None, overwrite: bool = False) -> dict[str, dict]:
    """Every stage in order (finished stages are reused), then the comparison table of `compare`."""
    from ..methods import get_method
    from ..training.run import run

    pipeline = load_recipe(config_path)
    output_dir = output_dir or pipeline.get("output_dir")
    if not output_dir:
        raise RecipeError(f"{config_path}: give output_dir in the pipeline or on the command line.")
    recipes = stage_recipes(pipeline, output_dir)
    compare = pipeline.get("compare") or list(recipes)
    summaries = {}
    for name, recipe in recipes.items():
        marker = os.path.join(recipe["output_dir"], FINISHED_MARKER)
        if os.path.exists(marker) and not overwrite:
            with open(marker, encoding="utf-8") as handle:
                summaries[name] = json.load(handle)
            logger.info("Stage %s: reusing the finished run in %s", name, recipe["output_dir"])
            continue
        print(f"\n===== Stage {name} ({recipe['method']}) =====", flush=True)
        extra = ["--overwrite_output_dir", "true"] if overwrite else []
        if recipe["method"] == METHOD:
            summaries[name] = run_audio_text(recipe, source=f"{config_path}:{name}", args=extra)
        else:
            summaries[name] = run(get_method(recipe["method"]), None, extra, recipe=recipe, source=f"{config_path}:{name}")
    print("\n" + format_comparison_table({name: summaries[name]["results"]["test"] for name in compare}))
    return summaries


def main(argv: Optional[list[str]] = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m hf_mtkd.audio_text.standalone", description=__doc__.split("\n\n")[0])
    parser.add_argument("config", nargs="?", help="a pipeline YAML (common / stages / compare) or a flat audio_text recipe")
    parser.add_argument("--config", dest="config_flag", help="the same, as hf-mtkd train takes it")
    parser.add_argument("--output_dir", help="overrides the pipeline's output_dir")
    parser.add_argument("--overwrite", action="store_true", help="retrain stages that already finished")
    known, flags = parser.parse_known_args(argv)
    known.config = known.config or known.config_flag
    if not known.config:
        parser.error("give the recipe or pipeline YAML")
    recipe = load_recipe(known.config)
    if "stages" in recipe:
        if flags:
            raise RecipeError(f"Unknown argument(s) for a pipeline: {' '.join(flags)}")
        return run_pipeline(known.config, known.output_dir, overwrite=known.overwrite)
    if recipe.get("method", METHOD) != METHOD:
        raise RecipeError(f"{known.config}: method {recipe['method']!r}; this runner trains audio_text recipes.")
    extra = (["--output_dir", known.output_dir] if known.output_dir else []) + \
        (["--overwrite_output_dir", "true"] if known.overwrite else [])
    return run_audio_text(recipe, source=known.config, args=[*flags, *extra])


if __name__ == "__main__":
    main()
