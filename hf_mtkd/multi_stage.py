"""Multi-stage runs (`hf-mtkd pipeline`; nothing to do with transformers' `pipeline()`): train several models in
order (e.g. one teacher per language, then an MTKD student and its FT baseline) and print them side by side.

A pipeline YAML holds `common` (keys every stage shares), `stages` (name -> keys of that stage,
including its `method`) and `compare` (stages to put in the final table). Each stage is an
ordinary flat recipe, validated like one; `{output_dir}` in a value names the pipeline's folder,
so a stage can point at the models of earlier stages. Stages whose output_dir already holds a
finished run are reused, not retrained (pass overwrite to retrain).
"""

from __future__ import annotations

import logging
import os
from typing import Any, Optional

from .config_parser import RecipeError, load_recipe, recipe_to_argv  # noqa: F401  (recipe_to_argv: re-exported for tests)
from .methods import get_method
from .metrics import format_comparison_table
from .run_summary import RunSummary
from .training.run import FINISHED_MARKER, run

logger = logging.getLogger(__name__)

PIPELINE_KEYS = ("output_dir", "common", "stages", "compare")


def _substitute(value: Any, output_dir: str) -> Any:
    if isinstance(value, str):
        return value.replace("{output_dir}", output_dir)
    if isinstance(value, list):
        return [_substitute(v, output_dir) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, output_dir) for k, v in value.items()}
    return value


def stage_recipes(pipeline: dict, output_dir: str) -> dict[str, dict]:
    """The flat recipe of every stage, in order."""
    unknown = set(pipeline) - set(PIPELINE_KEYS)
    if unknown:
        raise RecipeError(f"Pipeline has unknown key(s) {sorted(unknown)}; keys are {list(PIPELINE_KEYS)}.")
    stages = pipeline.get("stages")
    if not isinstance(stages, dict) or not stages:
        raise RecipeError("Pipeline needs `stages`: a mapping of stage name -> recipe keys.")
    common = pipeline.get("common") or {}
    recipes = {}
    for name, keys in stages.items():
        if not isinstance(keys, dict) or "method" not in keys:
            raise RecipeError(f"Stage {name!r} must be a mapping with a `method` key.")
        recipe = {**common, **keys, "output_dir": os.path.join(output_dir, name)}
        recipes[name] = _substitute(recipe, output_dir)
    return recipes


def run_pipeline(
    config_path: str,
    output_dir: Optional[str] = None,
    overrides: Optional[list[str]] = None,
    overwrite: bool = False,
) -> dict[str, RunSummary]:
    """Run every stage (reusing finished ones), then print the comparison table and each stage method's own
    tables (`Method.multi_stage_tables`); returns the stage summaries."""
    pipeline = load_recipe(config_path)
    output_dir = output_dir or pipeline.get("output_dir")
    if not output_dir:
        raise RecipeError(f"{config_path}: give output_dir in the pipeline or on the command line.")
    recipes = stage_recipes(pipeline, output_dir)
    compare = pipeline.get("compare") or list(recipes)
    missing = [name for name in compare if name not in recipes]
    if missing:
        raise RecipeError(f"compare names unknown stage(s) {missing}; stages are {list(recipes)}.")

    summaries: dict[str, RunSummary] = {}
    for name, recipe in recipes.items():
        marker = os.path.join(recipe["output_dir"], FINISHED_MARKER)
        if os.path.exists(marker) and not overwrite:
            logger.info("Stage %s: reusing the finished run in %s", name, recipe["output_dir"])
            summaries[name] = RunSummary.load(marker)
            continue
        print(f"\n===== Stage {name} ({recipe['method']}) =====", flush=True)
        args = list(overrides or []) + (["--overwrite_output_dir", "true"] if overwrite else [])
        summaries[name] = run(get_method(recipe["method"]), None, args, recipe=recipe, source=f"{config_path}:{name}")

    print("\n" + format_comparison_table({name: summaries[name].results["test"] for name in compare}))
    for name, summary in summaries.items():
        for table in get_method(summary.method).multi_stage_tables(name, summary):
            print("\n" + table)
    return summaries
