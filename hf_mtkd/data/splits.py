"""Train / validation / test splits: from the data's own splits, a split column, or
leave-one-group-out folds; missing splits are drawn by speaker so that no speaker is in two."""

from __future__ import annotations

import logging
import math
from collections import Counter, defaultdict
from typing import Optional

import numpy as np
from datasets import Dataset, DatasetDict, concatenate_datasets

from ..arguments import DataArguments
from .report import DataReport
from .sources import load_raw_dataset

logger = logging.getLogger(__name__)

# Seeded draws tried when looking for one that keeps every class on both sides.
_DRAW_ATTEMPTS = 50

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


def make_splits(dataset: DatasetDict, data_args: DataArguments, report: Optional[DataReport] = None) -> DatasetDict:
    """Return a DatasetDict with exactly the keys train, validation and test (speaker-disjoint when drawn).

    Speakers drawn into a split are logged and recorded in `report.drawn_speakers`.
    """
    report = report if report is not None else DataReport()
    names = {
        "train": data_args.train_split_name,
        "validation": data_args.validation_split_name,
        "test": data_args.test_split_name,
    }
    if data_args.test_fold is not None:
        return _leave_one_group_out(_concat(dataset), data_args, report)

    split_column = data_args.split_column_name
    if len(dataset) == 1 and split_column and split_column in next(iter(dataset.values())).column_names:
        dataset = _by_split_column(next(iter(dataset.values())), split_column)
        names = {"train": "train", "validation": "validation", "test": "test"}

    if names["train"] not in dataset:
        raise ValueError(f"No training split {names['train']!r} (--train_split_name); splits are {list(dataset)}.")
    train = dataset[names["train"]]
    test = dataset.get(names["test"])
    validation = dataset.get(names["validation"])
    if data_args.validation_fold:
        if validation is not None:
            raise ValueError(
                f"validation_fold {data_args.validation_fold} is given, but the data has its own "
                f"{names['validation']!r} split: use one or the other."
            )
        # Taken out of the training data before any test draw, so that the draw cannot take its speakers.
        in_validation = _fold_mask(train, data_args, "validation_fold")
        train, validation = train.select(np.flatnonzero(~in_validation)), train.select(np.flatnonzero(in_validation))
    if test is None:
        logger.warning("No %r split: drawing test speakers from the training data.", names["test"])
        train, test = _draw_by_speaker(train, data_args, "test", report)
    if validation is None:
        train, validation = _draw_by_speaker(train, data_args, "validation", report)
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


def _fold_mask(ds: Dataset, data_args: DataArguments, flag: str) -> np.ndarray:
    """Rows whose fold_column_name value is one of `data_args.<flag>`; values not in the data are named."""
    column = data_args.fold_column_name
    if column not in ds.column_names:
        raise ValueError(f"Column {column!r} (--fold_column_name) not found; columns are {ds.column_names}.")
    folds = np.asarray([str(v) for v in ds[column]])
    available = sorted(set(folds))
    wanted = [str(v) for v in getattr(data_args, flag) or []]
    unknown = [v for v in wanted if v not in available]
    # Multi-corpus recipes list one fold per corpus; after a language filter some are absent.
    if wanted and len(unknown) == len(wanted):
        raise ValueError(f"--{flag} {unknown}: not a value of column {column!r}; values are {available}.")
    if unknown:
        logger.warning("--%s values %s are not in column %r (filtered out?); using the others.", flag, unknown, column)
    return np.isin(folds, wanted)


def fold_values(data_args: DataArguments) -> list[str]:
    """The values of fold_column_name in the data `data_args` names (after its `languages` filter), sorted: what
    test_fold and validation_fold may name. Reads the metadata only; no audio is decoded."""
    column, language_column = data_args.fold_column_name, data_args.language_column_name
    values = set()
    for split, ds in load_raw_dataset(data_args).items():
        if column not in ds.column_names:
            raise ValueError(f"Column {column!r} (--fold_column_name) not found in split {split!r}; its columns are "
                             f"{ds.column_names}.")
        folds = ds[column]
        if data_args.languages and language_column in ds.column_names:
            keep = set(data_args.languages)
            folds = [fold for fold, language in zip(folds, ds[language_column]) if language in keep]
        values.update(str(fold) for fold in folds)
    return sorted(values)


def _leave_one_group_out(ds: Dataset, data_args: DataArguments, report: DataReport) -> DatasetDict:
    in_test = _fold_mask(ds, data_args, "test_fold")
    test = ds.select(np.flatnonzero(in_test))
    if data_args.validation_fold:
        in_validation = _fold_mask(ds, data_args, "validation_fold")
        validation = ds.select(np.flatnonzero(in_validation))
        train = ds.select(np.flatnonzero(~in_test & ~in_validation))
    else:
        train, validation = _draw_by_speaker(ds.select(np.flatnonzero(~in_test)), data_args, "validation", report)
    return _finish(DatasetDict(train=train, validation=validation, test=test), data_args)


def _draw_by_speaker(ds: Dataset, data_args: DataArguments, role: str, report: DataReport) -> tuple[Dataset, Dataset]:
    """Move a share of the speakers (or rows, without a speaker column) out of `ds` into a `role` split.

    The draw is stratified by language: each language with two or more speakers gives at least one,
    in proportion to its number of speakers (largest remainders), and keeps at least one. A drawn validation
    split takes at least two speakers from a language with four or more: one speaker's clips are too few, and
    too much one voice, to select a model on. Among
    seeded draws, the first that keeps every class in training and covers every (language, class)
    pair in the drawn split is taken, else the one covering most.
    """
    rng = np.random.default_rng(data_args.split_seed + (0 if role == "validation" else 1))
    speaker_column = data_args.speaker_column_name
    by_speaker = bool(speaker_column and speaker_column in ds.column_names)
    if by_speaker:
        groups = np.asarray([str(s) for s in ds[speaker_column]])
    else:
        logger.warning("No speaker column: the %s split is drawn by rows, so speakers may overlap.", role)
        groups = np.asarray([str(i) for i in range(len(ds))])
    language_column = data_args.language_column_name
    if language_column and language_column in ds.column_names:
        languages = np.asarray([str(v) for v in ds[language_column]])
    else:
        languages = np.full(len(ds), "")
    labels = np.asarray([str(v) for v in ds[data_args.label_column_name]])

    # Each group's language is the one most of its rows have; its classes are the (language, label) pairs it holds.
    group_rows: dict[str, list[int]] = defaultdict(list)
    for i, group in enumerate(groups):
        group_rows[group].append(i)
    group_language = {g: Counter(languages[rows]).most_common(1)[0][0] for g, rows in group_rows.items()}
    group_pairs = {g: set(zip(languages[rows], labels[rows])) for g, rows in group_rows.items()}
    per_language: dict[str, list[str]] = defaultdict(list)
    for group in sorted(group_rows):
        per_language[group_language[group]].append(group)
    if len(group_rows) < 2:
        raise ValueError(f"Cannot draw a speaker-independent {role} split from one speaker ({sorted(group_rows)}).")
    n_draw = math.ceil(data_args.validation_fraction * len(group_rows))
    quotas = _allocate(n_draw, {lang: len(members) for lang, members in per_language.items()},
                       two_from=_TWO_VALIDATION_SPEAKERS_FROM if role == "validation" else None)
    if not any(quotas.values()):  # every language has one speaker: draw across languages
        group_language = dict.fromkeys(group_rows, "")
        per_language = {"": sorted(group_rows)}
        quotas = _allocate(n_draw, {"": len(group_rows)})
    for lang, quota in quotas.items():
        if quota == 0 and lang:
            report.warn(f"The drawn {role} split has no {lang!r} data: that language has one "
                        f"{'speaker' if by_speaker else 'row'} in the training data.")

    all_labels = set(labels)
    wanted_pairs = set().union(*(group_pairs[g] for lang in per_language if quotas[lang] for g in per_language[lang]))
    best, best_score = None, None
    for _ in range(_DRAW_ATTEMPTS):
        chosen = {
            g for lang, members in per_language.items() for g in rng.permutation(members)[: quotas[lang]].tolist()
        }
        drawn_pairs = set().union(*(group_pairs[g] for g in chosen))
        kept_labels = {label for g in group_rows if g not in chosen for _, label in group_pairs[g]}
        score = (kept_labels == all_labels, len(drawn_pairs), len({label for _, label in drawn_pairs}))
        if best_score is None or score > best_score:
            best, best_score = chosen, score
        if score[0] and drawn_pairs == wanted_pairs:
            break
    mask = np.isin(groups, sorted(best))
    if by_speaker:
        report.drawn_speakers[role] = sorted(best)
        described = "; ".join(
            f"{lang or 'all'}: {', '.join(sorted(g for g in best if group_language[g] == lang))}"
            for lang in sorted(per_language) if quotas[lang]
        )
        # WARNING is the level users see by default; which speakers evaluate the model is worth seeing.
        logger.warning("%s speakers drawn from the training data (split_seed %d): "
                       "%s", role, data_args.split_seed, described)
    return ds.select(np.flatnonzero(~mask)), ds.select(np.flatnonzero(mask))


#: A language with this many training speakers or more gives at least two to a drawn validation split.
_TWO_VALIDATION_SPEAKERS_FROM = 4


def _allocate(total: int, sizes: dict[str, int], two_from: Optional[int] = None) -> dict[str, int]:
    """Split `total` draws over strata of `sizes` groups: proportional (largest remainders), at least one
    from each stratum with two or more groups (at least two from a stratum of `two_from` or more), never all of
    a stratum."""
    drawable = {key: n for key, n in sizes.items() if n >= 2}
    quotas = {key: 0 for key in sizes}
    if not drawable:
        return quotas
    total = max(total, len(drawable))
    pool = sum(drawable.values())
    shares = {key: total * n / pool for key, n in drawable.items()}
    for key, share in shares.items():
        least = 2 if two_from is not None and drawable[key] >= two_from else 1
        quotas[key] = min(drawable[key] - 1, max(least, math.floor(share)))
    # Remaining draws go to the largest remainders, ties to the larger stratum, then by name (deterministic).
    order = sorted(drawable, key=lambda key: (-(shares[key] - math.floor(shares[key])), -drawable[key], key))
    remaining = total - sum(quotas.values())
    while remaining > 0:
        open_keys = [key for key in order if quotas[key] < drawable[key] - 1]
        if not open_keys:
            break
        for key in open_keys[:remaining]:
            quotas[key] += 1
        remaining = total - sum(quotas.values())
    return quotas


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
