"""Crash-safe outputs: files replaced in one `os.replace`, checkpoints judged complete by their last file.

A process killed at any instant (SIGKILL, out of memory, a pre-empted node) leaves each output file
either as it was or complete, never half-written:

- the final model goes to a hidden staging folder inside `output_dir` and each file is then moved
  into place with `os.replace`; a crash leaves the staging folder behind, which the next save removes;
- JSON files (trainer state, train metrics, the run summary) go through a temporary file;
- a `checkpoint-N` folder counts only once its `trainer_state.json` (the Trainer writes it last)
  parses, so a run killed while writing a checkpoint resumes from the one before.

`run_summary.json`, written last of all, marks a finished run (see `hf_mtkd.training.run`); a run written
over a finished one (`overwrite_output_dir`) first removes exactly the files that run wrote
(`hf_mtkd.training.run_record`).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import tempfile
from typing import Optional

from ..utils.atomic import write_json_atomic

logger = logging.getLogger("hf_mtkd")

STAGING_DIR = ".hf_mtkd-staging"
TRAINER_STATE_NAME = "trainer_state.json"
#: The training arguments as JSON, beside the Trainer's pickled `training_args.bin`: what model cards are
#: built from (nothing in hf_mtkd unpickles a file).
TRAINING_ARGS_JSON = "training_args.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
# Weight files save_pretrained writes (single or sharded); stale ones are removed when a new save lands.
_WEIGHTS = re.compile(r"^(pytorch_model|model)(-\d+-of-\d+)?\.(bin|safetensors)(\.index\.json)?$")


#: What torch's zip writer says when the file system takes fewer bytes than it was given (a full disk, a quota).
_SHORT_WRITE = "unexpected pos"
#: Below this many free bytes a failed write is reported as a full disk.
_NEARLY_FULL_BYTES = 64 * 2**20


def _free_bytes(path: str) -> Optional[int]:
    while path and not os.path.exists(path):
        path = os.path.dirname(path)
    try:
        return shutil.disk_usage(path or ".").free
    except OSError:
        return None


def disk_full_error(err: BaseException, path: str, what: str) -> Optional[OSError]:
    """When writing `what` into `path` failed with `err` because the disk is full (ENOSPC, torch's "unexpected
    pos" short write, or almost no free space left): an OSError(ENOSPC) that says so and names the path. Else
    None, and `err` gets a note naming the path (the caller re-raises it)."""
    free = _free_bytes(path)
    full = (isinstance(err, OSError) and err.errno == errno.ENOSPC) or _SHORT_WRITE in str(err) or (
        free is not None and free < _NEARLY_FULL_BYTES)
    if not full:
        err.add_note(f"hf_mtkd: while writing the {what} in {path}")
        return None
    left = f"{free / 2**20:.1f} MiB free" if free is not None else "free space unknown"
    return OSError(errno.ENOSPC, f"No space left on device while writing the {what} in {path} ({left}; the write "
                                 f"failed with: {err}). Free some space and rerun to resume.")


def save_training_args_json(args, output_dir: str | os.PathLike) -> str:
    """`training_args.json` in `output_dir`: the arguments as `to_dict()` gives them (every *_token value
    replaced by a placeholder), in field order. Model cards are built from it, never from the pickle."""
    path = os.path.join(os.fspath(output_dir), TRAINING_ARGS_JSON)
    write_json_atomic(args.to_dict(), path, sort_keys=False)
    return path


def publish_staged(staging: str, target: str) -> list[str]:
    """Move every entry of `staging` into `target` (files with one `os.replace` each), remove
    weight files of an earlier save that the new one does not have, then remove `staging`."""
    names = sorted(os.listdir(staging))
    # Weights first, configs last: a crash in between leaves complete files of either save.
    names.sort(key=lambda name: 0 if _WEIGHTS.match(name) else 1)
    for name in names:
        source, destination = os.path.join(staging, name), os.path.join(target, name)
        if os.path.isdir(source):
            if os.path.isdir(destination):
                shutil.rmtree(destination)
            os.replace(source, destination)
        else:
            os.replace(source, destination)
    new = set(names)
    for name in os.listdir(target):
        if _WEIGHTS.match(name) and name not in new and os.path.isfile(os.path.join(target, name)):
            os.remove(os.path.join(target, name))
    shutil.rmtree(staging, ignore_errors=True)
    return names


def is_checkpoint_dir(path: str | os.PathLike) -> bool:
    """True for a Trainer checkpoint folder (`.../checkpoint-N`)."""
    return _CHECKPOINT.match(os.path.basename(os.path.normpath(os.fspath(path)))) is not None


def checkpoint_is_complete(path: str) -> bool:
    """True when the checkpoint's trainer_state.json (the Trainer's last write) exists and parses."""
    try:
        with open(os.path.join(path, TRAINER_STATE_NAME), encoding="utf-8") as handle:
            json.load(handle)
    except (OSError, ValueError):
        return False
    return True


def checkpoint_folders(folder: str) -> list[str]:
    """The `checkpoint-N` folders in `folder`, by step."""
    if not os.path.isdir(folder):
        return []
    steps = sorted(
        (int(match.group(1)), name)
        for name in os.listdir(folder)
        if (match := _CHECKPOINT.match(name)) and os.path.isdir(os.path.join(folder, name))
    )
    return [os.path.join(folder, name) for _, name in steps]


def last_complete_checkpoint(folder: str) -> Optional[str]:
    """The highest-numbered complete `checkpoint-N` in `folder`; incomplete ones are named in a warning."""
    for path in reversed(checkpoint_folders(folder)):
        if checkpoint_is_complete(path):
            return path
        logger.warning("Ignoring %s: incomplete (no readable %s; the run died while saving "
                       "it).", path, TRAINER_STATE_NAME)
    return None


def require_writable_dir(folder: str | os.PathLike) -> None:
    """Create `folder` if needed and write a probe file there, so that a folder the run cannot write fails
    now, naming it, instead of with a PermissionError at the first checkpoint after an epoch of training."""
    folder = os.fspath(folder)
    try:
        os.makedirs(folder, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".hf_mtkd-write-test-", dir=folder)
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        raise PermissionError(f"output_dir {folder!r} cannot be written: {err.strerror or err}.") from err


def require_complete_checkpoint(path: str | os.PathLike) -> None:
    """An explicit resume_from_checkpoint must be a checkpoint the Trainer finished writing: its
    trainer_state.json parses and each safetensors file is whole (else safetensors fails mid-load)."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"resume_from_checkpoint {path!r} is not a folder.")
    last = last_complete_checkpoint(os.path.dirname(os.path.abspath(path)))
    hint = (
        f"; the last complete checkpoint beside it is {last!r}"
        if last and os.path.abspath(last) != os.path.abspath(path)
        else ""
    )
    if not checkpoint_is_complete(path):
        raise ValueError(
            f"resume_from_checkpoint {path!r} is incomplete: no readable {TRAINER_STATE_NAME} (the run died while "
            f"saving it){hint}."
        )
    from safetensors import SafetensorError, safe_open

    for name in sorted(os.listdir(path)):
        if name.endswith(".safetensors"):
            try:
                with safe_open(os.path.join(path, name), framework="pt"):
                    pass
            except (SafetensorError, OSError) as err:
                raise ValueError(f"resume_from_checkpoint {path!r}: {name} is damaged ({err}){hint}.") from err
