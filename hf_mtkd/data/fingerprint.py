"""A cheap fingerprint of the data a run reads, to tell whether a finished run still matches its data.

Local data (an audiofolder, a `save_to_disk` folder, native corpus roots, the demo corpus) is fingerprinted by
every file's relative path, size and modification time: no file is opened, so a corpus of ten thousand clips
costs one directory walk. Files `datasets` writes beside a `save_to_disk` dataset (its `cache-*.arrow` and
`tmp*` files, hf_mtkd's teacher-logit cache folders) are derived, not data, and are left out. A Hub dataset
is fingerprinted by its name and configuration only (its files are not here to look at).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from ..arguments import DataArguments

# Written by datasets.map / hf_mtkd beside a dataset: derived files, not the data.
_DERIVED_PREFIXES = ("cache-", "tmp", "hf_mtkd-teacher-logits-")


@dataclass(frozen=True)
class DataFingerprint:
    sha256: str
    source: str  # what was looked at, for messages
    files: int  # files walked (0 for a Hub dataset)


def local_data_folders(data_args: DataArguments) -> list[str]:
    """The local folders a run reads its data from (none for a Hub dataset)."""
    if data_args.demo_corpus:
        from ..corpora.synthetic_demo import build_demo_corpus  # a cheap check once the corpus exists

        return [str(build_demo_corpus())]
    if data_args.data_dir:
        return [data_args.data_dir]
    if data_args.dataset_path:
        return [data_args.dataset_path]
    if data_args.corpus:
        return list(data_args.corpus_root or [])
    if data_args.dataset_name and os.path.exists(data_args.dataset_name):
        return [data_args.dataset_name]
    return []


def data_fingerprint(data_args: DataArguments) -> DataFingerprint:
    """The fingerprint of the data `data_args` names (see the module docstring)."""
    digest = hashlib.sha256()
    folders = local_data_folders(data_args)
    if not folders:
        name = f"{data_args.dataset_name}:{data_args.dataset_config_name}"
        digest.update(f"hub:{name}".encode())
        return DataFingerprint(digest.hexdigest(), f"Hub dataset {name}", 0)
    files = 0
    for index, folder in enumerate(folders):
        digest.update(f"folder {index}\n".encode())
        if os.path.isfile(folder):
            stat = os.stat(folder)
            digest.update(f"{os.path.basename(folder)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
            files += 1
            continue
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(_DERIVED_PREFIXES))
            for name in sorted(filenames):
                if name.startswith(_DERIVED_PREFIXES):
                    continue
                path = os.path.join(dirpath, name)
                stat = os.stat(path)
                relative = os.path.relpath(path, folder).replace(os.sep, "/")
                digest.update(f"{relative}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
                files += 1
    return DataFingerprint(digest.hexdigest(), ", ".join(folders), files)
