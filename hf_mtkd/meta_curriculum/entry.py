"""`python -m hf_mtkd.meta_curriculum --config recipes/<dataset>/meta_curriculum.yaml [--flag value ...]`

A stand-alone entry (logging -> data -> fit -> summary) until the method registry runs `method: meta_curriculum`
through `hf-mtkd train`; it parses the same recipes (ModelArguments, DataArguments, MetaCurriculumConfig).
"""

from __future__ import annotations

import os
import sys
from typing import Optional

from ..arguments import DataArguments, ModelArguments
from ..config_parser import load_recipe, parse_config
from ..training.outputs import write_json_atomic
from ..training.run import FINISHED_MARKER, check_output_dir, prepare_data, setup_logging
from . import register_auto_classes
from .config import MetaCurriculumConfig
from .fit import fit_meta_curriculum, upstream_feature_extractor

METHOD_NAME = "meta_curriculum"
DATACLASSES = (ModelArguments, DataArguments, MetaCurriculumConfig)


def run_meta_curriculum(config_path: Optional[str] = None, args: Optional[list[str]] = None,
                        recipe: Optional[dict] = None) -> dict:
    """Parse, prepare the data, run every phase, write `run_summary.json`; returns the summary."""
    if recipe is None and config_path:
        recipe = load_recipe(config_path)
    if recipe and recipe.get("method", METHOD_NAME) != METHOD_NAME:
        raise ValueError(f"{config_path or 'recipe'} is a {recipe['method']!r} recipe, not {METHOD_NAME!r}.")
    model_args, data_args, config = parse_config(DATACLASSES, config_path, args, recipe=recipe)
    register_auto_classes()
    setup_logging(config)
    check_output_dir(config)
    feature_extractor = upstream_feature_extractor(config, model_args)
    splits, label_names, languages = prepare_data(data_args, feature_extractor.sampling_rate)
    result = fit_meta_curriculum(config, model_args, data_args, splits, label_names)
    summary = {
        "method": METHOD_NAME,
        "label_names": label_names,
        "languages": languages,
        "results": {split: result.stage_results["updated_student"][split] for split in ("validation", "test")},
        **result.summary_extras(),
    }
    write_json_atomic(summary, os.path.join(config.output_dir, FINISHED_MARKER), default=str)
    return summary


def main(argv: Optional[list[str]] = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    config_path = None
    if "--config" in argv:
        index = argv.index("--config")
        config_path = argv[index + 1]
        del argv[index : index + 2]
    return run_meta_curriculum(config_path, argv)
