"""Multi-stage runs (`hf-mtkd pipeline`; nothing to do with transformers' `pipeline()`): train several models in
order (e.g. one teacher per language, then an MTKD student and its FT baseline) and print them side by side.

A pipeline YAML holds `common` (keys every stage shares), `stages` (name -> keys of that stage,
including its `method`) and `compare` (stages to put in the final table). Each stage is an
ordinary flat recipe; `{output_dir}` in a value names the pipeline's folder, so a stage can point
at the models of earlier stages.

Every stage's recipe is parsed into its method's dataclasses before the first stage trains, and every path it
names inside the pipeline's folder must be an earlier stage's folder (or inside one) or exist already, so a
typo in the last stage costs no training. A finished stage records in its folder (`pipeline_stage.json`)
a hash of its resolved recipe (every argument as parsed, command-line overrides and defaults included)
and of its data (`hf_mtkd.data.fingerprint`: file list, sizes, modification times). It is reused only when
both still match, and when no stage it reads from (a value naming that stage's folder) was retrained in
this invocation; otherwise it is retrained, and the reason is printed. `overwrite` retrains every stage.

`seeds` (or `folds`, values of fold_column_name) run every stage once per seed (per fold, tested on that fold) in
its own folder, `{output_dir}` naming it, and add the table over the runs and the paired verdicts against a
`baseline` (`hf_mtkd.metrics.axes`).
"""

from __future__ import annotations

import hashlib
import json
import os
import textwrap
import time
from collections.abc import Sequence
from typing import Any, Optional

from .config_parser import RecipeError, load_recipe, parse_config
from .data.fingerprint import data_fingerprint
from .registry import get_method
from .metrics import format_comparison_table, format_definitions, save_comparison
from .metrics.results_doc import PROVENANCE_JSON
from .pipeline_axes import (
    FOLDER_NAME,
    check_fold_recipes,
    check_fold_values,
    data_args_of,
    flag_values,
    pipeline_axis,
)
from .metrics.axes import FOLDS, SEEDS, Axis, AxisRuns, format_axis_table, paired_verdicts, save_axis_comparison
from .run_summary import RunSummary
from .training.run import FINISHED_MARKER, run
from .training.run_record import NOT_IN_RECIPE_HASH, changed_keys, recipe_values
from .utils.atomic import write_json_atomic
from .utils.provenance import machine_provenance


PIPELINE_KEYS = ("output_dir", "common", "stages", "compare", "seeds", "folds", "baseline")
#: What a finished stage records about the run it holds.
STAGE_RECORD = "pipeline_stage.json"


def _substitute(value: Any, output_dir: str) -> Any:
    if isinstance(value, str):
        return value.replace("{output_dir}", output_dir)
    if isinstance(value, list):
        return [_substitute(v, output_dir) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, output_dir) for k, v in value.items()}
    return value


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


def _relative_to(value: Any, folder: str) -> Any:
    """`value` with every path inside `folder` (or `folder` itself) written as `{output_dir}/...`."""
    if isinstance(value, str):
        for sep in {"/", os.sep}:
            if value == folder or value.startswith(folder.rstrip(sep) + sep):
                return "{output_dir}" + value[len(folder):]
        return value
    if isinstance(value, (list, tuple)):
        return [_relative_to(v, folder) for v in value]
    if isinstance(value, dict):
        return {k: _relative_to(v, folder) for k, v in value.items()}
    return value


def stage_recipes(pipeline: dict, output_dir: str, seed: Optional[int] = None,
                  fold: Optional[str] = None) -> dict[str, dict]:
    """The flat recipe of every stage, in order (with `seed`, every stage trains with that seed; with `fold`, every
    stage tests on that fold: `test_fold: [fold]`)."""
    unknown = set(pipeline) - set(PIPELINE_KEYS)
    if unknown:
        raise RecipeError(f"Pipeline has unknown key(s) {sorted(unknown)}; keys are {list(PIPELINE_KEYS)}.")
    stages = pipeline.get("stages")
    if not isinstance(stages, dict) or not stages:
        raise RecipeError("Pipeline needs `stages`: a mapping of stage name -> recipe keys.")
    common = pipeline.get("common") or {}
    recipes = {}
    for name, keys in stages.items():
        if not isinstance(name, str) or not FOLDER_NAME.match(name) or ".." in name:
            raise RecipeError(
                f"Stage name {name!r} is not a plain name: stage names become folder names inside output_dir, so "
                "they may hold letters, digits, '_', '-' and '.', start with a letter or digit, and not contain '..'."
            )
        if not isinstance(keys, dict) or "method" not in keys:
            raise RecipeError(f"Stage {name!r} must be a mapping with a `method` key.")
        recipe = {**common, **keys, "output_dir": os.path.join(output_dir, name)}
        if seed is not None:
            recipe["seed"] = seed
        if fold is not None:
            if "test_fold" in recipe:
                raise RecipeError(
                    f"Stage {name!r} sets test_fold {recipe['test_fold']!r}, but the pipeline runs folds, which give "
                    "each fold's stages that fold as their test fold: remove test_fold from common and the stages."
                )
            recipe["test_fold"] = [fold]
        recipes[name] = _substitute(recipe, output_dir)
    return recipes


#: Keys naming a path the run writes (or creates) rather than reads: it need not exist before the pipeline starts.
#: (Reporting keys, `NOT_IN_RECIPE_HASH`, read nothing either.)
_WRITTEN_KEYS = ("output_dir", "cache_dir")


def check_stage_references(recipes: dict[str, dict], output_dir: str, config_path: str, overrides: list[str]) -> None:
    """A value naming a path inside the pipeline's folder (`{output_dir}/...`) must be the folder of an earlier
    stage (or a path inside one) or exist already: a typo, or a stage that comes later, would otherwise fail only
    when its stage starts, after every stage before it trained."""
    prefix = output_dir.rstrip("/" + os.sep)
    earlier: list[str] = []
    for name, recipe in recipes.items():
        pairs = [(key, text) for key, value in recipe.items() for text in _strings(value)] + flag_values(overrides)
        for key, text in pairs:
            inside = any(text.startswith(prefix + sep) for sep in {"/", os.sep})
            if key in _WRITTEN_KEYS or key in NOT_IN_RECIPE_HASH or not inside or os.path.exists(text):
                continue
            path = os.path.normpath(text)
            if any(path == folder or path.startswith(folder + os.sep) for folder in earlier):
                continue
            before = f"those are {[os.path.basename(folder) for folder in earlier]}" if earlier else "it is the first"
            raise RecipeError(
                f"{config_path}: stage {name!r}: key {key!r} names {text!r}, inside the pipeline folder, but it is "
                f"not "
                f"the folder of a stage before {name!r} ({before}) and does not exist. Check the path, or the order "
                "of the stages."
            )
        earlier.append(os.path.normpath(recipe["output_dir"]))


def parse_stages(recipes: dict[str, dict], config_path: str, overrides: list[str]) -> dict[str, tuple]:
    """Every stage's recipe (with the command-line overrides) parsed into its method's dataclasses: a bad key,
    value or method in any stage is an error before the first stage trains."""
    parsed = {}
    for name, recipe in recipes.items():
        try:
            method = get_method(recipe["method"])
        except ValueError as err:
            raise RecipeError(f"{config_path}: stage {name!r}: {err}") from err
        parsed[name] = parse_config(method.dataclass_types(), f"{config_path}:{name}", list(overrides), recipe=recipe)
    return parsed


def depends_on(recipe: dict, earlier: dict[str, str]) -> list[str]:
    """The earlier stages (name -> folder) whose folder a value of `recipe` names (a teacher, an initial model)."""
    values = [v for key, value in recipe.items() if key != "output_dir" for v in _strings(value)]
    return [name for name, folder in earlier.items() if any(_relative_to(v, folder) != v for v in values)]


def stage_state(parsed: tuple, pipeline_dir: str, dependencies: dict[str, dict]) -> dict:
    """What decides whether a finished stage still holds the right run: its resolved recipe (paths inside the
    pipeline's folder written relative to it, so a moved pipeline folder is still recognised), the data's
    fingerprint, and the states of the stages it depends on."""
    recipe = _relative_to(recipe_values(parsed), pipeline_dir)
    data = data_fingerprint(data_args_of(parsed))
    deps = {name: state["recipe_sha256"] + state["data_sha256"] for name, state in dependencies.items()}
    recipe_sha = hashlib.sha256(
        json.dumps({"recipe": recipe, "depends_on": deps}, sort_keys=True).encode()
    ).hexdigest()
    return {"recipe_sha256": recipe_sha, "data_sha256": data.sha256, "recipe": recipe, "depends_on": deps,
            "data": {"source": data.source, "files": data.files}}


def reuse_decision(stage_dir: str, state: dict, retrained: list[str], overwrite: bool) -> tuple[bool, str]:
    """(reuse the finished run in `stage_dir`?, why) for a stage whose current state is `state`; `retrained` are the
    stages it depends on that were retrained in this invocation."""
    if not os.path.exists(os.path.join(stage_dir, FINISHED_MARKER)):
        return False, ""
    if overwrite:
        return False, "retraining: --overwrite"
    if retrained:
        return False, f"retraining: stage(s) {retrained} it reads from were retrained"
    try:
        with open(os.path.join(stage_dir, STAGE_RECORD), encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return False, f"retraining: its folder has no readable {STAGE_RECORD} saying which recipe and data it ran with"
    reasons = []
    if record.get("recipe_sha256") != state["recipe_sha256"]:
        keys = changed_keys(record.get("recipe", {}), state["recipe"])
        deps = changed_keys(record.get("depends_on", {}), state["depends_on"])
        reasons.append("recipe changed (" + "; ".join(
            part for part in (keys, f"stages it reads from: {deps}" if deps else "") if part) + ")")
    if record.get("data_sha256") != state["data_sha256"]:
        was = record.get("data", {})
        reasons.append(f"data changed ({state['data']['source']}, {state['data']['files']} files; it ran on "
                       f"{was.get('source')}, {was.get('files')} files)")
    if reasons:
        return False, "retraining: " + "; ".join(reasons)
    return True, f"reusing the finished run in {stage_dir}: recipe and data unchanged since it ran"


def _recorded_wall_time(stage_dir: str) -> Optional[float]:
    """The wall time a reused stage's training took (None when its record predates wall times)."""
    try:
        with open(os.path.join(stage_dir, STAGE_RECORD), encoding="utf-8") as handle:
            value = json.load(handle).get("wall_time_s")
    except (OSError, ValueError):
        return None
    return float(value) if isinstance(value, (int, float)) else None


def format_duration(seconds: float) -> str:
    """'42 s', '3 min 05 s', '1 h 02 min'."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def wall_time_line(wall_times: dict[str, Optional[float]], reused: set[str]) -> str:
    """'Wall time per stage: a 25 s, b 1 min 02 s (reused, trained earlier); this run 25 s in all.' (A reused
    stage whose record predates wall times: 'b (reused, not timed)'.)"""
    parts = [f"{name} (reused, not timed)" if seconds is None else
             f"{name} {format_duration(seconds)}" + (" (reused, trained earlier)" if name in reused else "")
             for name, seconds in wall_times.items()]
    total = sum(seconds for name, seconds in wall_times.items() if seconds is not None and name not in reused)
    return "Wall time per stage: " + ", ".join(parts) + f"; this run {format_duration(total)} in all."


def axis_recipes(pipeline: dict, output_dir: str, axis: Optional[Axis], values: list) -> dict[Any, dict[str, dict]]:
    """Every stage's recipe for every seed or fold (`pipeline_axis`), each in its own folder `<output_dir>/<axis>-<v>`
    (`{output_dir}` naming that folder, so that a student reads the teachers of its own seed or fold)."""
    if axis is None:
        return {None: stage_recipes(pipeline, output_dir)}
    return {value: stage_recipes(pipeline, os.path.join(output_dir, axis.folder(value)),
                                 seed=value if axis is SEEDS else None, fold=value if axis is FOLDS else None)
            for value in values}


def run_pipeline(
    config_path: str,
    output_dir: Optional[str] = None,
    overrides: Optional[list[str]] = None,
    overwrite: bool = False,
    seeds: Optional[Sequence[int]] = None,
    folds: Optional[Sequence[str]] = None,
) -> dict[str, RunSummary]:
    """Run every stage (reusing finished ones whose recipe and data are unchanged), then print the comparison
    table (also written as `comparison.md` and `comparison.csv` into the pipeline's folder), each stage's wall
    time and training warnings, and each stage method's own tables (`Method.multi_stage_tables`).

    With `seeds` (or `seeds:` in the pipeline) every stage runs once per seed, in `<output_dir>/seed-<s>/<stage>`
    (`{output_dir}` names the seed's folder, so a student is distilled from the same seed's teachers), and the
    pipeline's folder gets the table over seeds (mean ± sd; `comparison_seeds.{md,csv}`). With `baseline:` (a
    compared stage) each other compared stage gets its paired UR difference to it, with a bootstrap interval over
    the same test clips pooled over seeds, and a verdict (`paired_verdicts.json`).

    With `folds` (or `folds:`; values of fold_column_name, leave-one-group-out) every stage runs once per fold with
    `test_fold: [fold]`, in `<output_dir>/fold-<f>/<stage>` (`{output_dir}` names the fold's folder: a student is
    distilled from its own fold's teachers), and the pipeline's folder gets the table over folds (mean ± sd;
    `comparison_folds.{md,csv}`); with `baseline:`, the paired difference of the mean over folds, its bootstrap
    resampling every fold's test clips within that fold (`hf_mtkd.metrics.paired`). Seeds and folds together are
    refused.

    Returns the stage summaries by stage name, or by `seed-<s>/<stage>` (`fold-<f>/<stage>`) with seeds (folds)."""
    pipeline = load_recipe(config_path)
    output_dir = output_dir or pipeline.get("output_dir")
    if not output_dir:
        raise RecipeError(f"{config_path}: give output_dir in the pipeline or on the command line.")
    axis, values = pipeline_axis(pipeline, seeds, folds, config_path)
    recipes_by_run = axis_recipes(pipeline, output_dir, axis, values)
    folders = {v: output_dir if axis is None else os.path.join(output_dir, axis.folder(v)) for v in values}
    recipes = next(iter(recipes_by_run.values()))
    compare = pipeline.get("compare") or list(recipes)
    missing = [name for name in compare if name not in recipes]
    if missing:
        raise RecipeError(f"compare names unknown stage(s) {missing}; stages are {list(recipes)}.")
    baseline = pipeline.get("baseline")
    if baseline is not None and baseline not in compare:
        raise RecipeError(f"{config_path}: baseline {baseline!r} is not a compared stage; compared: {compare}.")
    # Every stage of every seed or fold parsed, and its references resolved, before the first one trains.
    if axis is FOLDS:
        check_fold_recipes(recipes_by_run, config_path, list(overrides or []))
    parsed_by_run = {v: parse_stages(r, config_path, list(overrides or [])) for v, r in recipes_by_run.items()}
    if axis is SEEDS:  # a --seed flag parses after the recipe and would give every seed run the same seed
        for v, parsed in parsed_by_run.items():
            clashing = sorted(name for name, stage in parsed.items() if stage[2].seed != v)
            if clashing:
                raise RecipeError(
                    f"{config_path}: stage(s) {clashing} of seed run {v} would train with seed "
                    f"{parsed[clashing[0]][2].seed} (a --seed on the command line?), so every seed run would be the "
                    "same run; choose the seeds with --seeds instead."
                )
    for v, stage_set in recipes_by_run.items():
        check_stage_references(stage_set, folders[v], config_path, list(overrides or []))
    if axis is FOLDS:
        check_fold_values(parsed_by_run, config_path)

    summaries: dict[str, RunSummary] = {}
    runs = AxisRuns()
    for v, stage_set in recipes_by_run.items():
        if axis is not None:
            print(f"\n########## {axis.name.capitalize()} {v} ({folders[v]}) ##########", flush=True)
        done = _run_stages(stage_set, parsed_by_run[v], folders[v], config_path, overrides, overwrite, compare)
        summaries.update(done if axis is None else {f"{axis.folder(v)}/{name}": summary for name, summary in
                                                    done.items()})
        if axis is not None or baseline is not None:
            for name in compare:
                # Without an axis, a baseline compares one run per stage: keyed by the stage's own seed.
                value = v if axis is not None else parsed_by_run[v][name][2].seed
                runs.setdefault(name, {})[value] = {
                    "results": done[name].results["test"],
                    "predictions": _test_predictions(stage_set[name]["output_dir"], name) if baseline else None,
                }
    if runs:
        _report_runs(runs, axis or SEEDS, baseline, parsed_by_run, summaries, output_dir, config_path)
    return summaries


def _report_runs(runs: AxisRuns, axis: Axis, baseline: Optional[str], parsed_by_run: dict, summaries: dict,
                 output_dir: str, config_path: str) -> None:
    """Print and write the table over seeds or folds, the paired verdicts and the provenance of the numbers."""
    first = next(iter(parsed_by_run.values()))[baseline or next(iter(runs))][2]  # the training arguments
    verdicts = (paired_verdicts(runs, baseline, axis, n_bootstrap=first.n_bootstrap, seed=first.seed)
                if baseline else {})
    values = sorted(next(iter(runs.values())))
    if axis.same_test_clips:
        how = "a bootstrap interval over the same test clips, pooled over seeds"
    else:
        n_clips = sum(int(run["results"]["overall"]["n"]) for run in next(iter(runs.values())).values())
        how = (f"a bootstrap interval resampling each fold's test clips within that fold ({n_clips} clips in all), "
               "the difference averaged over folds")
    print(f"\nTest UR over {axis.plural} {values} (mean ± sd, %)"
          + (f"; paired difference to {baseline} with {how}, and the verdict it gives" if baseline else "") + ":")
    print(format_axis_table(runs, verdicts, baseline, axis))
    if first.process_index == 0:
        notes = [] if axis.same_test_clips else [
            "Test split; each fold tests on its own clips (leave-one-group-out); UR and WR as mean ± sd over folds "
            "(%)" + (f"; ΔUR: the paired difference to {baseline} with {how}." if baseline else ".")]
        markdown, table_csv = save_axis_comparison(runs, verdicts, baseline, output_dir, axis, notes=notes)
        threads = sorted({s.torch_num_threads for s in summaries.values() if s.torch_num_threads is not None})
        write_json_atomic({**machine_provenance(), axis.plural: values,
                           "baseline": baseline, "pipeline": config_path,
                           "torch_num_threads": threads[0] if len(threads) == 1 else threads},
                          os.path.join(output_dir, PROVENANCE_JSON))
        print(f"Also in {markdown.name} and {table_csv.name} (every {axis.name}'s row), in\n  {markdown.parent}")


def _test_predictions(stage_dir: str, name: str) -> dict:
    path = os.path.join(stage_dir, "test_predictions.json")
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"Stage {name}: {path} is missing (the stage was trained by an older hf_mtkd); the "
                                "paired comparison needs each clip's prediction. Rerun with --overwrite.") from err


def _run_stages(recipes: dict[str, dict], parsed: dict[str, tuple], output_dir: str, config_path: str,
                overrides: Optional[list[str]], overwrite: bool, compare: list[str]) -> dict[str, RunSummary]:
    """One pass over the stages (one seed): train or reuse each, then print and save the comparison table."""
    summaries: dict[str, RunSummary] = {}
    states: dict[str, dict] = {}
    retrained: set[str] = set()
    wall_times: dict[str, Optional[float]] = {}
    for name, recipe in recipes.items():
        stage_dir = recipe["output_dir"]
        deps = depends_on(recipe, {earlier: recipes[earlier]["output_dir"] for earlier in states})
        states[name] = stage_state(parsed[name], output_dir, {dep: states[dep] for dep in deps})
        reuse, why = reuse_decision(stage_dir, states[name], sorted(retrained & set(deps)), overwrite)
        if reuse:
            print(f"Stage {name}: {why}.", flush=True)
            summaries[name] = RunSummary.load(os.path.join(stage_dir, FINISHED_MARKER))
            wall_times[name] = _recorded_wall_time(stage_dir)
            continue
        print(f"\n===== Stage {name} ({recipe['method']}) =====" + (f"\n{why}." if why else ""), flush=True)
        args = list(overrides or []) + (["--overwrite_output_dir", "true"] if why or overwrite else [])
        start = time.monotonic()
        summaries[name] = run(get_method(recipe["method"]), None, args, recipe=recipe, source=f"{config_path}:{name}")
        wall_times[name] = time.monotonic() - start
        print(f"Stage {name} finished in {format_duration(wall_times[name])}.", flush=True)
        retrained.add(name)
        if parsed[name][2].process_index == 0:  # the training arguments; written after the run's own marker
            write_json_atomic({**states[name], "wall_time_s": wall_times[name]}, os.path.join(stage_dir, STAGE_RECORD))

    results = {name: summaries[name].results["test"] for name in compare}
    reused = set(summaries) - retrained
    notes = [wall_time_line(wall_times, reused)]
    notes += [f"Training warning, stage {name}: {warning}" for name, summary in summaries.items()
              for warning in summary.training_warnings]
    print("\n" + format_comparison_table(results, definitions=False))
    print("\n".join(textwrap.fill(note, 120, subsequent_indent="  ") for note in notes))
    if next(iter(parsed.values()))[2].process_index == 0:  # the training arguments
        markdown, table_csv = save_comparison(results, output_dir, split="test", notes=notes)
        print(f"Also in {markdown.name} and {table_csv.name} (with the per-language CIs, WR and F1s), in\n  "
              f"{markdown.parent}")
    print("\n".join(format_definitions(next(iter(results.values())))))
    for name, summary in summaries.items():
        for table in get_method(summary.method).multi_stage_tables(name, summary):
            print("\n" + table)
    return summaries
