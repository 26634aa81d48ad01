"""Train / validation / test splits: from the data's own splits, a split column, or
leave-one-group-out folds; missing splits are drawn by speaker so that no speaker is in two."""

from __future__ import annotations

import logging
import math

import numpy as np
from datasets import Dataset, DatasetDict, concatenate_datasets

from ..arguments import DataArguments

logger = logging.getLogger(__name__)

# Spellings of split names found in metadata files, mapped to the canonical role.
_SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "test": "test",
    "testing": "test",
}


def make_splits(dataset: DatasetDict, data_args: DataArguments) -> DatasetDict:
    """Return a DatasetDict with exactly the keys train, validation and test (speaker-disjoint when drawn)."""
    names = {
        "train": data_args.train_split_name,
        "validation": data_args.validation_split_name,
        "test": data_args.test_split_name,
    }
    if data_args.test_fold is not None:
        return _leave_one_group_out(_concat(dataset), data_args)

    split_column = data_args.split_column_name
    if len(dataset) == 1 and split_column and split_column in next(iter(dataset.values())).column_names:
        dataset = _by_split_column(next(iter(dataset.values())), split_column)
        names = {"train": "train", "validation": "validation", "test": "test"}

    if names["train"] not in dataset:
        raise ValueError(f"No training split {names['train']!r} (--train_split_name); splits are {list(dataset)}.")
    train = dataset[names["train"]]
    test = dataset.get(names["test"])
    validation = dataset.get(names["validation"])
    if test is None:
        logger.warning("No %r split: drawing test speakers from the training data.", names["test"])
        train, test = _draw_by_speaker(train, data_args, "test")
    if validation is None:
        train, validation = _draw_by_speaker(train, data_args, "validation")
    return _finish(DatasetDict(train=train, validation=validation, test=test), data_args)


def _concat(dataset: DatasetDict) -> Dataset:
    return concatenate_datasets(list(dataset.values())) if len(dataset) > 1 else next(iter(dataset.values()))


def _by_split_column(ds: Dataset, column: str) -> DatasetDict:
    values = ds.unique(column)
    unknown = [v for v in values if str(v).lower() not in _SPLIT_ALIASES]
    if unknown:
        raise ValueError(
            f"Column {column!r} (--split_column_name) has values {unknown} that are not a split name "
            f"({sorted(set(_SPLIT_ALIASES))})."
        )
    roles = [_SPLIT_ALIASES[str(v).lower()] for v in ds[column]]
    roles = np.asarray(roles)
    out = {}
    for role in ("train", "validation", "test"):
        idx = np.flatnonzero(roles == role)
        if len(idx):
            out[role] = ds.select(idx)
    return DatasetDict(out)


def _leave_one_group_out(ds: Dataset, data_args: DataArguments) -> DatasetDict:
    column = data_args.fold_column_name
    if column not in ds.column_names:
        raise ValueError(f"Column {column!r} (--fold_column_name) not found; columns are {ds.column_names}.")
    folds = np.asarray([str(v) for v in ds[column]])
    available = sorted(set(folds))
    # Multi-corpus recipes list one fold per corpus; after a language filter some are absent.
    for flag in ("test_fold", "validation_fold"):
        wanted = [str(v) for v in getattr(data_args, flag) or []]
        unknown = [v for v in wanted if v not in available]
        if wanted and len(unknown) == len(wanted):
            raise ValueError(f"--{flag} {unknown}: not a value of column {column!r}; values are {available}.")
        if unknown:
            logger.warning("--%s values %s are not in column %r (filtered out?); using the others.", flag, unknown, column)
    in_test = np.isin(folds, [str(v) for v in data_args.test_fold])
    test = ds.select(np.flatnonzero(in_test))
    if data_args.validation_fold:
        in_validation = np.isin(folds, [str(v) for v in data_args.validation_fold])
        validation = ds.select(np.flatnonzero(in_validation))
        train = ds.select(np.flatnonzero(~in_test & ~in_validation))
    else:
        train, validation = _draw_by_speaker(ds.select(np.flatnonzero(~in_test)), data_args, "validation")
    return _finish(DatasetDict(train=train, validation=validation, test=test), data_args)


def _draw_by_speaker(ds: Dataset, data_args: DataArguments, role: str) -> tuple[Dataset, Dataset]:
    """Move a fraction of the speakers (or rows, without a speaker column) out of `ds`."""
    rng = np.random.default_rng(data_args.split_seed + (0 if role == "validation" else 1))
    column = data_args.speaker_column_name
    if column and column in ds.column_names:
        speakers = np.asarray([str(s) for s in ds[column]])
        groups = sorted(set(speakers))
        if len(groups) < 2:
            raise ValueError(f"Cannot draw a speaker-independent {role} split from one speaker ({groups}).")
        n_out = min(len(groups) - 1, max(1, math.ceil(data_args.validation_fraction * len(groups))))
        chosen = set(rng.permutation(groups)[:n_out].tolist())
        mask = np.asarray([s in chosen for s in speakers])
        logger.info("%s speakers drawn from training data: %s", role, sorted(chosen))
    else:
        logger.warning("No speaker column: the %s split is drawn by rows, so speakers may overlap.", role)
        mask = np.zeros(len(ds), dtype=bool)
        mask[rng.permutation(len(ds))[: max(1, math.ceil(data_args.validation_fraction * len(ds)))]] = True
    return ds.select(np.flatnonzero(~mask)), ds.select(np.flatnonzero(mask))


def _finish(splits: DatasetDict, data_args: DataArguments) -> DatasetDict:
    for role, ds in splits.items():
        if len(ds) == 0:
            raise ValueError(f"The {role} split is empty.")
    if data_args.max_train_samples is not None:
        splits["train"] = _select_spread(splits["train"], data_args.max_train_samples)
    if data_args.max_eval_samples is not None:
        for role in ("validation", "test"):
            splits[role] = _select_spread(splits[role], data_args.max_eval_samples)
    return splits


def _select_spread(ds: Dataset, n: int) -> Dataset:
    """Keep n rows spread evenly over the split (not the first n, which may all be one speaker)."""
    if n >= len(ds):
        return ds
    return ds.select(np.linspace(0, len(ds) - 1, n).round().astype(int).tolist())
