"""Files replaced in one `os.replace`: a reader, or a process killed at any instant, sees the old file or
the new one, never half of one. The one place hf_mtkd writes an output file."""

from __future__ import annotations

import json
import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

__all__ = ["atomic_path", "write_json_atomic", "write_text_atomic"]


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside `path` to write (by any means: a library's `savefig`, say); on
    success it is flushed to disk and moved onto `path`, on any error (or a kill signal raised as an
    exception) it is removed and `path` is left as it was. Missing parent folders are created."""
    target = os.path.abspath(os.fspath(path))
    directory = os.path.dirname(target)
    os.makedirs(directory, exist_ok=True)
    suffix = os.path.splitext(target)[1]  # writers that pick the format from the extension still see it
    tmp = os.path.join(directory, f".{os.path.basename(target)}.{uuid.uuid4().hex}.tmp{suffix}")
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text_atomic(path: str | os.PathLike, text: str, *, newline: str | None = None) -> Path:
    """Write `text` (UTF-8) to `path` atomically; `newline` as for `open` ("" writes line ends untranslated)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline=newline) as handle:
            handle.write(text)
    return Path(path)


def write_json_atomic(obj: Any, path: str | os.PathLike, **dump_kwargs) -> Path:
    """`json.dumps(obj)` (indent 2, sorted keys unless told otherwise; numpy values as Python numbers) to
    `path` atomically, with a final newline."""
    options = {"indent": 2, "sort_keys": True, "default": json_default, **dump_kwargs}
    return write_text_atomic(path, json.dumps(obj, **options) + "\n")


def json_default(obj: Any) -> Any:
    """JSON for the values our outputs hold besides plain Python ones: numpy scalars and arrays, paths."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")
