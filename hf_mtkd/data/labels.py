"""Label handling: names, remapping (e.g. excited -> happy), selection and encoding to ids."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from typing import Optional

from datasets import ClassLabel, DatasetDict, Value

from ..arguments import DataArguments
from .report import DataReport, first_few

logger = logging.getLogger(__name__)


def labels_as_names(dataset: DatasetDict, column: str) -> DatasetDict:
    """ClassLabel columns become their names, so that every later step works on emotion names.

    (A plain cast to string would give the digits of the ids, not the names.)
    """
    out = {}
    for split, ds in dataset.items():
        feature = ds.features[column]
        if isinstance(feature, ClassLabel):
            features = ds.features.copy()
            features[column] = Value("string")
            ds = ds.map(
                lambda batch: {column: feature.int2str(batch[column])},
                batched=True,
                features=features,
                desc="label ids -> names",
            )
        out[split] = ds
    return DatasetDict(out)


def strip_label_spaces(dataset: DatasetDict, column: str, report: DataReport) -> DatasetDict:
    """Remove spaces around label names (a CSV written as `file, angry`), with a warning.

    Spaces around a name never tell two emotions apart, so ' angry' becomes 'angry' rather than a class of its own.
    """
    padded = Counter()
    for ds in dataset.values():
        padded.update(label for label in ds.unique(column) if isinstance(label, str) and label != label.strip())
    if not padded:
        return dataset
    report.warn(
        f"Column {column!r}: removed the spaces around label(s) {first_few(repr(label) for label in sorted(padded))}, "
        "so that they join the class of the same name."
    )
    return dataset.map(
        lambda batch: {column: [label.strip() if isinstance(label, str) else label for label in batch[column]]},
        batched=True,
        desc="strip label spaces",
    )


def check_case_variants(present: Counter, column: str, label_set: Optional[list[str]] = None) -> None:
    """Labels differing only by case ('Angry', 'angry') are an error: which spelling names the class is
    the user's choice (it becomes the model's id2label, and teachers are matched to students by name).
    With a label set, only spellings of its classes matter (the others are dropped anyway)."""
    spellings = defaultdict(list)
    for label in present:
        spellings[label.casefold()].append(label)
    wanted = None if label_set is None else {label.casefold() for label in label_set}
    clashes = [
        sorted(group) for key, group in spellings.items() if len(group) > 1 and (wanted is None or key in wanted)
    ]
    if clashes:
        described = "; ".join(" vs ".join(f"{label!r} ({present[label]} "
                                          f"rows)" for label in group) for group in clashes)
        example = {label: clashes[0][-1] for label in clashes[0][:-1]}
        raise ValueError(
            f"Column {column!r} has labels that differ only by case: {described}. They would become separate "
            f"classes; merge them with label_map, e.g. label_map: {example}."
        )


def select_labels(
    dataset: DatasetDict, data_args: DataArguments, report: Optional[DataReport] = None
) -> tuple[DatasetDict, list[str]]:
    """Apply label_map, choose the label set, drop (counted) or reject rows outside it.

    Also applies the `languages` filter. Returns the filtered data and the label names in class-id order.
    """
    report = report if report is not None else DataReport()
    column = data_args.label_column_name
    dataset = labels_as_names(dataset, column)
    dataset = strip_label_spaces(dataset, column, report)
    mapping = data_args.label_map or {}
    if mapping:
        dataset = dataset.map(
            lambda batch: {column: [mapping.get(label, label) for label in batch[column]]},
            batched=True,
            desc="label_map",
        )
    if data_args.languages:
        keep = set(data_args.languages)
        lang_column = data_args.language_column_name
        found = set()
        for ds in dataset.values():
            found.update(ds.unique(lang_column))
        missing = keep - found
        if missing:
            raise ValueError(f"--languages names {sorted(missing)}, not found in column {lang_column!r} (found "
                             f"{sorted(found)}).")
        dataset = dataset.filter(
            lambda batch: [lang in keep for lang in batch[lang_column]], batched=True, desc="languages"
        )

    present = Counter()
    for ds in dataset.values():
        present.update(ds[column])
    if any(not isinstance(label, str) or not label for label in present):
        bad = [label for label in present if not isinstance(label, str) or not label][:5]
        raise ValueError(f"Column {column!r} holds values that are not emotion names: {bad}.")
    check_case_variants(present, column, data_args.labels)
    if not data_args.labels and len(present) < 2:
        raise ValueError(
            f"Column {column!r} holds a single emotion {sorted(present)}: a classifier needs at least two classes."
        )
    label_names = list(data_args.labels) if data_args.labels else sorted(present)
    unlisted = {label: n for label, n in present.items() if label not in label_names}
    if unlisted:
        if not data_args.drop_unlisted_labels:
            raise ValueError(
                f"Column {column!r} has labels outside the label set {label_names}: "
                + ", ".join(f"{label!r} ({n} rows)" for label, n in sorted(unlisted.items()))
                + ". Map them with label_map, list them in labels, or set drop_unlisted_labels."
            )
        # Every dropped row is named in the report (and so in the metrics files and the card): a test clip that
        # vanishes without a trace makes the test numbers look complete when they are not.
        split_column = data_args.split_column_name
        per_split: dict[str, Counter] = {}
        for split, ds in dataset.items():
            roles = ds[split_column] if split_column and split_column in ds.column_names else [split] * len(ds)
            for label, role in zip(ds[column], roles):
                if label in unlisted:
                    per_split.setdefault(str(role), Counter())[label] += 1
        report.warn(
            f"Dropped {sum(unlisted.values())} row(s) whose label is not in {label_names} (drop_unlisted_labels): "
            + "; ".join(f"{role}: " + ", ".join(f"{label} {n}" for label, n in sorted(counts.items()))
                        for role, counts in sorted(per_split.items()))
            + "."
        )
        keep_labels = set(label_names)
        dataset = dataset.filter(
            lambda batch: [label in keep_labels for label in batch[column]], batched=True, desc="label set"
        )
    absent = [label for label in label_names if present.get(label, 0) == 0]
    if absent:
        raise ValueError(f"Labels {absent} are in the label set but have no rows in column {column!r}.")
    return dataset, label_names
