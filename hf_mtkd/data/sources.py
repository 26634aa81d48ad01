"""Load the raw labelled speech from wherever the user keeps it, as a DatasetDict."""

from __future__ import annotations

import csv
import logging
import os

from datasets import Dataset, DatasetDict, concatenate_datasets, load_dataset, load_from_disk
from datasets.data_files import SPLIT_KEYWORDS

from ..arguments import DataArguments

logger = logging.getLogger(__name__)


def load_raw_dataset(data_args: DataArguments) -> DatasetDict:
    """One DatasetDict from the single source named in `data_args` (see DataArguments)."""
    if data_args.demo_corpus:
        from ..corpora.synthetic_demo import build_demo_corpus

        dataset = _load_audiofolder(str(build_demo_corpus(multimodal=data_args.demo_corpus_multimodal)))
    elif data_args.data_dir:
        dataset = _load_audiofolder(data_args.data_dir)
    elif data_args.dataset_path:
        if not os.path.isdir(data_args.dataset_path):
            raise FileNotFoundError(f"dataset_path {data_args.dataset_path!r} is not a folder written by "
                                    f"save_to_disk.")
        dataset = load_from_disk(data_args.dataset_path)
    elif data_args.corpus:
        dataset = _load_corpora(data_args)
    else:
        dataset = load_dataset(data_args.dataset_name, data_args.dataset_config_name)
    if isinstance(dataset, Dataset):
        dataset = DatasetDict({data_args.train_split_name: dataset})
    _check_columns(dataset, data_args)
    return dataset


def _load_corpora(data_args: DataArguments) -> DatasetDict:
    """One or more native corpora; several are concatenated split by split on their common columns."""
    from ..corpora import CORE_COLUMNS, load_corpus

    options = data_args.corpus_options or {}
    loaded = []
    for name, root in zip(data_args.corpus, data_args.corpus_root):
        # Options may be keyed by corpus name, or flat when there is one corpus.
        own = options.get(name, {}) if len(data_args.corpus) > 1 or name in options else options
        loaded.append(load_corpus(name, root, **own))
    if len(loaded) == 1:
        return loaded[0]
    # Reader-specific string columns (gender, intensity, ...) survive: a corpus without one gets "" in it.
    extras = sorted({c for dataset in loaded for ds in dataset.values() for c in ds.column_names} - set(CORE_COLUMNS))

    def aligned(ds):
        for column in extras:
            if column not in ds.column_names:
                ds = ds.add_column(column, [""] * len(ds))
        return ds.select_columns([*CORE_COLUMNS, *extras])

    split_names = sorted({split for dataset in loaded for split in dataset})
    return DatasetDict({
        split: concatenate_datasets([aligned(dataset[split]) for dataset in loaded if split in dataset])
        for split in split_names
    })


def _load_audiofolder(data_dir: str) -> DatasetDict:
    """An audiofolder: metadata.csv at the top, or the standard layout train/, validation/, test/ with one each."""
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"data_dir {data_dir!r} is not a folder.")
    metadata = os.path.join(data_dir, "metadata.csv")
    # The folder names audiofolder itself turns into splits (train/, validation/ or dev/, test/, ...).
    split_dirs = [
        name for names in SPLIT_KEYWORDS.values() for name in names if os.path.isdir(os.path.join(data_dir, name))
    ]
    if os.path.isfile(metadata):
        _check_metadata_csv(metadata)
    elif split_dirs:
        for name in split_dirs:
            split_metadata = os.path.join(data_dir, name, "metadata.csv")
            if not os.path.isfile(split_metadata):
                raise FileNotFoundError(
                    f"data_dir {data_dir!r} has split folders {split_dirs}, but {split_metadata!r} is missing: each "
                    "split folder needs its metadata.csv (columns file_name and label; optional language, speaker)."
                )
            _check_metadata_csv(split_metadata)
    else:
        raise FileNotFoundError(
            f"data_dir {data_dir!r} has no metadata.csv and no split folders (train/, validation/, test/, each with a "
            "metadata.csv); an audiofolder needs metadata.csv with the columns file_name and label "
            "(optional: language, speaker, split)."
        )
    # drop_labels: the label comes from metadata.csv, never from folder names.
    return load_dataset("audiofolder", data_dir=data_dir, drop_labels=True)


#: Separators a metadata.csv is sometimes written with instead of commas, as named in the error.
_OTHER_DELIMITERS = {";": "';'", "\t": "tabs", "|": "'|'"}


def _check_metadata_csv(path: str) -> None:
    """An empty or header-only metadata.csv, or one separated by something other than commas, fails inside pandas
    or datasets with a message naming neither the file nor the cause."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header or not any(cell.strip() for cell in header):
            raise ValueError(f"{path} is empty: it needs a header row (file_name,label,...) and one row per clip.")
        # A header read as one column that holds another separator: a spreadsheet's export (';' in many locales)
        # or a TSV. datasets would fail on it naming neither the file nor the separator.
        found = [name for sep, name in _OTHER_DELIMITERS.items() if len(header) == 1 and sep in header[0]]
        if found:
            raise ValueError(
                f"{path}: its header {header[0]!r} is one column: the fields are separated by {found[0]}, not commas. "
                "metadata.csv must be comma-separated (file_name,label,...); save it again with commas."
            )
        if not any(any(cell.strip() for cell in row) for row in reader):
            raise ValueError(f"{path} has a header ({','.join(header)}) but no rows: list one clip per row.")


def _check_columns(dataset: DatasetDict, data_args: DataArguments) -> None:
    for split, ds in dataset.items():
        for flag in ("audio_column_name", "label_column_name"):
            column = getattr(data_args, flag)
            if column not in ds.column_names:
                raise ValueError(
                    f"Column {column!r} (--{flag}) not found in split {split!r}; its columns are {ds.column_names}."
                )
    if data_args.languages:
        column = data_args.language_column_name
        for split, ds in dataset.items():
            if not column or column not in ds.column_names:
                raise ValueError(
                    f"--languages needs a language column, but {column!r} (--language_column_name) is not in split "
                    f"{split!r}; its columns are {ds.column_names}."
                )
