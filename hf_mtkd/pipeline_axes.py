"""The axes of a pipeline: its seeds or its folds (`seeds:` / `folds:` or `--seeds` / `--folds`), read and checked
before any stage trains, and the small readers of a pipeline's recipes the checks share with `multi_stage`."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Optional

from .config_parser import RecipeError
from .data.splits import fold_values
from .metrics.axes import FOLDS, SEEDS, Axis

#: A stage's folder is `<output_dir>/<name>` (a fold's `<output_dir>/fold-<fold>`): a name is one plain path
#: component, so no stage writes (or, with --overwrite, removes) anything outside the pipeline's folder.
FOLDER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def data_args_of(parsed: tuple):
    """The DataArguments among a stage's parsed dataclasses."""
    return next(p for p in parsed if hasattr(p, "data_dir"))


def flag_values(overrides: list[str]) -> list[tuple[str, str]]:
    """(key, value) of every value in command-line overrides (`--key value [value ...]`)."""
    pairs, key = [], None
    for token in overrides:
        if token.startswith("--"):
            key, _, inline = token[2:].partition("=")
            if inline:
                pairs.append((key, inline))
        elif key is not None:
            pairs.append((key, token))
    return pairs


def pipeline_seeds(pipeline: dict, override: Optional[Sequence[int]], config_path: str) -> Optional[list[int]]:
    """The seeds to run every stage with (`seeds` in the pipeline, or `--seeds`); None: each stage's own seed."""
    seeds = list(override) if override is not None else pipeline.get("seeds")
    if seeds is None:
        return None
    if (not isinstance(seeds, list) or not seeds or any(isinstance(s, bool) or not isinstance(s, int) for s in seeds)
            or len(set(seeds)) != len(seeds)):
        raise RecipeError(f"{config_path}: seeds must be a list of distinct whole numbers, got {seeds!r}.")
    return seeds


def pipeline_folds(pipeline: dict, override: Optional[Sequence[str]], config_path: str) -> Optional[list[str]]:
    """The folds to run every stage on (`folds` in the pipeline, or `--folds`): values of fold_column_name; None:
    no folds."""
    folds = list(override) if override is not None else pipeline.get("folds")
    if folds is None:
        return None
    if (not isinstance(folds, list) or not folds
            or any(isinstance(f, bool) or not isinstance(f, (str, int)) for f in folds)):
        raise RecipeError(f"{config_path}: folds must be a list of values of fold_column_name, got {folds!r}.")
    folds = [str(f) for f in folds]
    if len(set(folds)) != len(folds):
        raise RecipeError(f"{config_path}: folds lists a fold twice: {folds}.")
    bad = [f for f in folds if not FOLDER_NAME.match(f) or ".." in f]
    if bad:
        raise RecipeError(f"{config_path}: fold(s) {bad} cannot name a folder (fold-<fold>): a fold may hold letters, "
                          "digits, '_', '-' and '.', start with a letter or digit, and not contain '..'.")
    return folds


def pipeline_axis(pipeline: dict, seeds: Optional[Sequence[int]], folds: Optional[Sequence[str]],
                  config_path: str) -> tuple[Optional[Axis], list]:
    """(the axis, its values): (SEEDS, seeds), (FOLDS, folds), or (None, [None]) for one run of every stage."""
    seed_list = pipeline_seeds(pipeline, seeds, config_path)
    fold_list = pipeline_folds(pipeline, folds, config_path)
    if seed_list is not None and fold_list is not None:
        raise RecipeError(
            f"{config_path}: seeds {seed_list} and folds {fold_list} together are not supported. Run the folds once "
            "per seed instead (`--folds ... --seed S --output_dir DIR/seed-S`, one command per seed), or the seeds "
            "on one fold (`test_fold` in common)."
        )
    if seed_list is not None:
        return SEEDS, seed_list
    if fold_list is not None:
        return FOLDS, fold_list
    return None, [None]


#: The DataArguments that decide which rows, with which fold values, a stage's data holds.
_DATA_SOURCE_KEYS = ("demo_corpus", "demo_corpus_multimodal", "dataset_name", "dataset_config_name", "data_dir",
                     "dataset_path", "corpus", "corpus_root", "corpus_options", "fold_column_name",
                     "language_column_name", "languages")


def check_fold_recipes(recipes_by_fold: dict[str, dict[str, dict]], config_path: str, overrides: list[str]) -> None:
    """Before any stage of a folds run is parsed: every stage names its fold column, no `--test_fold` on the command
    line replaces the folds' test folds, and no stage validates on the fold it tests on."""
    flags: dict[str, list[str]] = {}
    for key, value in flag_values(overrides):
        flags.setdefault(key, []).append(value)
    if "test_fold" in flags:
        raise RecipeError(f"{config_path}: --test_fold {' '.join(flags['test_fold'])} on the command line would "
                          "replace every fold's test fold. Drop it: folds gives each fold its own.")
    for fold, recipes in recipes_by_fold.items():
        for name, recipe in recipes.items():
            where = f"{config_path}: stage {name!r}"
            if not recipe.get("fold_column_name") and "fold_column_name" not in flags:
                raise RecipeError(f"{where}: folds need fold_column_name (the column whose values folds lists, e.g. "
                                  "`fold_column_name: fold` for IEMOCAP's sessions) in common; it is not set.")
            validation = flags.get("validation_fold", recipe.get("validation_fold")) or []
            validation = [str(v) for v in ([validation] if isinstance(validation, (str, int)) else validation)]
            if fold in validation:
                raise RecipeError(
                    f"{where}: validation_fold {validation} holds {fold!r}, the test fold of fold {fold!r}: that "
                    f"fold would select its model on its own test clips. Leave validation_fold out (validation "
                    f"speakers are then drawn from the other folds' training data) or {fold!r} out of folds."
                )


def check_fold_values(parsed_by_fold: dict[str, dict[str, tuple]], config_path: str) -> None:
    """Before any stage of a folds run trains: every fold is a value of the fold column in every stage's data (read
    once per distinct data source, metadata only: no audio is decoded). The data layer would refuse an unknown test
    fold too, but only when that fold's first stage starts, after the folds before it trained."""
    available: dict[str, list[str]] = {}
    for fold, stages in parsed_by_fold.items():
        for name, parsed in stages.items():
            data_args, where = data_args_of(parsed), f"{config_path}: stage {name!r}"
            source = json.dumps({key: getattr(data_args, key) for key in _DATA_SOURCE_KEYS}, sort_keys=True,
                                default=str)
            if source not in available:
                try:
                    available[source] = fold_values(data_args)
                except (ValueError, FileNotFoundError) as err:
                    raise RecipeError(f"{where}: {err}") from err
            if fold not in available[source]:
                raise RecipeError(
                    f"{where}: fold {fold!r} is not a value of column {data_args.fold_column_name!r} "
                    f"(fold_column_name) in its data; the values are {available[source]}."
                )
