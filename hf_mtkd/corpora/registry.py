"""Name -> reader registry and `load_corpus`, the one entry point recipes and the data layer call."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence

from datasets import DatasetDict

from .base import CorpusReader, CorpusReport

#: Registered readers by name ("iemocap", "fesc", "cafe", "demos", "meld", "emodb", "ravdess", "crema_d").
CORPORA: dict[str, type[CorpusReader]] = {}

# Other spellings users write for the same corpora, after normalisation.
_ALIASES = {"cremad": "crema_d", "emo_db": "emodb", "berlin": "emodb"}


def register_corpus(cls: type[CorpusReader]) -> type[CorpusReader]:
    """Class decorator: add a reader to CORPORA under its `name`."""
    name = cls.name
    if name in CORPORA and CORPORA[name] is not cls:
        raise ValueError(f"A corpus reader named {name!r} is already registered ({CORPORA[name].__name__}).")
    CORPORA[name] = cls
    return cls


def list_corpora() -> list[str]:
    """Names accepted by `load_corpus`, sorted."""
    return sorted(CORPORA)


def get_reader(name: str) -> type[CorpusReader]:
    """The reader class for `name` (case-insensitive; '-', ' ' and '_' are the same: 'CREMA-D' is 'crema_d')."""
    if not isinstance(name, str):
        raise TypeError(f"corpus name must be a string, got {type(name).__name__}.")
    key = re.sub(r"[\s\-_]+", "_", name.strip().lower())
    key = _ALIASES.get(key, key)
    try:
        return CORPORA[key]
    except KeyError:
        raise ValueError(f"Unknown corpus {name!r}; known corpora: {', '.join(list_corpora())}.") from None


def load_corpus(
    name: str,
    root: str | os.PathLike,
    *,
    labels: Sequence[str] | None = None,
    label_map: Mapping[str, str] | None = None,
    return_report: bool = False,
    **reader_options,
) -> DatasetDict | tuple[DatasetDict, CorpusReport]:
    """Read a local copy of corpus `name` (in its distributor's layout) at `root` into a DatasetDict.

    Columns: audio (datasets.Audio, decoded on access), label (harmonised emotion name), original_label
    (the corpus' own code), language (ISO 639-1), speaker (unique across the corpus), fold, then the
    reader's extra columns. MELD gives train/validation/test; every other corpus one `train` split
    holding everything, to be split by `fold` or `speaker`.

    labels: emotion names to keep (after label_map); the rest is dropped and counted per label.
    label_map: emotion name -> emotion name, applied once after the corpus' own code -> name table and
        the reader's option mapping (e.g. IEMOCAP merge_excited).
    return_report: also return the CorpusReport (unknown codes, skipped files, rows dropped per label).
    reader_options: the reader's keyword options (see each reader's docstring), e.g. merge_excited=True.
    """
    reader = get_reader(name)(**reader_options)
    return reader.load(root, labels=labels, label_map=label_map, return_report=return_report)
