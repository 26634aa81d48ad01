"""Which run a folder (or a checkpoint) belongs to, and which of its files that run wrote.

A run writes `.hf_mtkd-run.json` into its `output_dir` before it trains. It records

- the run's *state*: a hash of its resolved recipe (every argument as parsed, defaults and command-line
  overrides included, less those that only change where or how it reports) and of its data
  (`hf_mtkd.data.fingerprint`);
- `foreign`: the files that were in the folder before hf_mtkd wrote anything there (a user's notes);
- once the run has finished, `files`: every file it wrote.

Each `checkpoint-N` gets a copy of the record (`SERTrainer._save_checkpoint` writes it before the Trainer's
files), so a checkpoint says which recipe and data made it: a run resumes a checkpoint only when both match,
and a checkpoint copied from another run, or left by an earlier recipe, is refused with what differs.
`--overwrite_output_dir` removes exactly the files of `files` (a finished run) or the checkpoints (an unfinished
one); nothing else in the folder is ever deleted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
from typing import Any, Iterable, Optional

from ..utils.atomic import write_json_atomic

logger = logging.getLogger("hf_mtkd")

RUN_RECORD = ".hf_mtkd-run.json"
#: Files hf_mtkd writes after the file list (run_summary.json, the pipeline's stage record) or that hold it.
_WRITTEN_AFTER_FILE_LIST = ("run_summary.json", "pipeline_stage.json", RUN_RECORD)
#: Arguments that change where or how a run reports, not what it trains: they are not part of the recipe hash.
NOT_IN_RECIPE_HASH = (
    "output_dir", "overwrite_output_dir", "resume_from_checkpoint", "local_rank", "report_to", "run_name",
    "project", "disable_tqdm", "log_level", "log_level_replica", "log_on_each_node", "logging_strategy",
    "logging_steps", "logging_first_step", "push_to_hub",
    # Machine-dependent (off without an accelerator) and no influence on the numbers.
    "dataloader_pin_memory",
    # When to warn about validation UR at chance level: what is reported, not what is trained.
    "chance_level_patience", "chance_level_tolerance",
)


class RunMismatchError(ValueError):
    """A checkpoint or folder belongs to another recipe or data than the run asked for."""


def recipe_values(parsed: Iterable[Any]) -> dict:
    """Every argument of a parsed recipe (its dataclasses) that decides what is trained, as JSON values."""
    values: dict[str, Any] = {}
    for instance in parsed:
        values.update(instance.to_dict() if hasattr(instance, "to_dict") else dataclasses.asdict(instance))
    values = {key: value for key, value in values.items()
              if key not in NOT_IN_RECIPE_HASH and not key.startswith("hub_")}
    return json.loads(json.dumps(values, default=str))


def sha256_of(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def run_state(parsed: tuple) -> dict:
    """The state a single run records: recipe and data hashes, with the values for messages."""
    from ..data.fingerprint import data_fingerprint

    recipe = recipe_values(parsed)
    data = data_fingerprint(next(p for p in parsed if hasattr(p, "data_dir")))
    return {"recipe_sha256": sha256_of(recipe), "data_sha256": data.sha256, "recipe": recipe,
            "data": {"source": data.source, "files": data.files}}


def changed_keys(old: dict, new: dict, limit: int = 5) -> str:
    """`key: old -> new, ...` for the keys whose values differ (at most `limit`, then a count)."""
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))

    def shown(value) -> str:
        text = json.dumps(value, default=str)
        return text if len(text) <= 200 else text[:197] + "..."

    parts = [f"{k}: {shown(old.get(k))} -> {shown(new.get(k))}" for k in keys[:limit]]
    return ", ".join(parts) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def state_differences(recorded: dict, state: dict) -> list[str]:
    """What differs between a recorded state and the run's (empty when they match)."""
    reasons = []
    if recorded.get("recipe_sha256") != state["recipe_sha256"]:
        reasons.append(f"recipe ({changed_keys(recorded.get('recipe') or {}, state['recipe']) or 'hash differs'})")
    if recorded.get("data_sha256") != state["data_sha256"]:
        was = recorded.get("data") or {}
        reasons.append(f"data (it ran on {was.get('source')}, {was.get('files')} files; this run reads "
                       f"{state['data']['source']}, {state['data']['files']} files)")
    return reasons


def read_record(folder: str) -> Optional[dict]:
    """The run record in `folder`, or None when it has none. A record that does not parse is an error."""
    path = os.path.join(folder, RUN_RECORD)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
    except ValueError as err:
        raise ValueError(f"{path} is damaged ({err}); it says which run wrote this folder. Remove the folder's "
                         "run by hand, or choose another output_dir.") from err
    if not isinstance(record, dict):
        raise ValueError(f"{path} is not a run record (a JSON object).")
    return record


def files_in(folder: str) -> list[str]:
    """Every file under `folder` (relative POSIX paths, sorted); symbolic links count as files, never followed."""
    found = []
    for root, dirs, names in os.walk(folder):
        for name in list(dirs):
            if os.path.islink(os.path.join(root, name)):
                names.append(name)
                dirs.remove(name)
        for name in names:
            found.append(os.path.relpath(os.path.join(root, name), folder).replace(os.sep, "/"))
    return sorted(found)


def start_record(folder: str, state: dict) -> dict:
    """Write the record of a run starting in `folder`: its state and the files already there (not the run's)."""
    record = {**state, "foreign": files_in(folder)}
    write_json_atomic(record, os.path.join(folder, RUN_RECORD))
    return record


def finish_record(folder: str) -> dict:
    """Add the list of files the run wrote (all in the folder but the foreign ones) to its record."""
    record = read_record(folder) or {}
    foreign = set(record.get("foreign") or ())
    written = set(files_in(folder)) - foreign
    record["files"] = sorted(written | set(_WRITTEN_AFTER_FILE_LIST))
    write_json_atomic(record, os.path.join(folder, RUN_RECORD))
    return record


def copy_record_into(checkpoint: str, output_dir: str) -> None:
    """Give `checkpoint` (being written) the run's record, so that it says which recipe and data made it."""
    source = os.path.join(output_dir, RUN_RECORD)
    if os.path.exists(source):
        os.makedirs(checkpoint, exist_ok=True)
        shutil.copyfile(source, os.path.join(checkpoint, RUN_RECORD))


def check_checkpoint(checkpoint: str, state: dict) -> None:
    """Refuse to resume `checkpoint` unless its record names this run's recipe and data."""
    record = read_record(checkpoint)
    if record is None:
        raise RunMismatchError(
            f"{checkpoint} records no recipe or data ({RUN_RECORD} is missing): it was not written by this run "
            "(copied from elsewhere, or by a Trainer outside hf_mtkd), so resuming it could continue another "
            "run's weights and optimizer. Remove it, or pass --overwrite_output_dir true to start afresh."
        )
    differences = state_differences(record, state)
    if differences:
        raise RunMismatchError(
            f"{checkpoint} was written by another run: its " + "; ".join(differences) + " differ from this run's. "
            "Resuming it would continue that run. Remove it, choose another output_dir, or pass "
            "--overwrite_output_dir true to start afresh."
        )


def _remove_empty_parents(folder: str, paths: Iterable[str]) -> None:
    parents = sorted({os.path.dirname(p) for p in paths if os.path.dirname(p)}, key=len, reverse=True)
    for parent in parents:
        while parent:
            full = os.path.join(folder, parent)
            if os.path.isdir(full) and not os.listdir(full):
                os.rmdir(full)
            parent = os.path.dirname(parent)


def remove_finished_run(folder: str, record: dict, marker: str) -> tuple[list[str], list[str]]:
    """Remove exactly the files the finished run in `folder` wrote (its record's `files`), marker first, so that
    a crash half-way leaves an unfinished folder, never a mix that looks finished. Returns (removed, kept): kept
    are the files hf_mtkd did not write, left where they are."""
    written = record.get("files")
    if not isinstance(written, list):
        raise FileExistsError(
            f"{folder!r} holds a finished run whose {RUN_RECORD} lists no files (written by an older hf_mtkd), so "
            "hf_mtkd cannot tell its files from yours. Remove the folder by hand, or choose another output_dir."
        )
    removed = []
    order = [marker] + [name for name in written if name != marker and name != RUN_RECORD] + [RUN_RECORD]
    for name in order:
        path = os.path.join(folder, name)
        if os.path.lexists(path) and not os.path.isdir(path):
            os.remove(path)
            removed.append(name)
    _remove_empty_parents(folder, removed)
    return removed, files_in(folder)


def remove_unfinished_run(folder: str, record: Optional[dict]) -> list[str]:
    """Overwriting an unfinished run: the checkpoints hf_mtkd wrote there (they hold a run record and were not in
    the folder before the run started), which a later resume would pick up, and the folder's record go."""
    from .outputs import checkpoint_folders

    foreign = {path.split("/")[0] for path in (record or {}).get("foreign") or ()}
    removed = []
    for path in checkpoint_folders(folder):
        name = os.path.basename(path)
        if name not in foreign and os.path.exists(os.path.join(path, RUN_RECORD)):
            shutil.rmtree(path)
            removed.append(name)
    if os.path.exists(os.path.join(folder, RUN_RECORD)):
        os.remove(os.path.join(folder, RUN_RECORD))
        removed.append(RUN_RECORD)
    return removed
