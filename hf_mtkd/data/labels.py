"""Label handling: names, remapping (e.g. excited -> happy), selection and encoding to ids."""

from __future__ import annotations

import logging
from collections import Counter

from datasets import ClassLabel, DatasetDict, Value

from ..arguments import DataArguments

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


def select_labels(dataset: DatasetDict, data_args: DataArguments) -> tuple[DatasetDict, list[str]]:
    """Apply label_map, choose the label set, drop (counted) or reject rows outside it.

    Also applies the `languages` filter. Returns the filtered data and the label names in class-id order.
    """
    column = data_args.label_column_name
    dataset = labels_as_names(dataset, column)
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
            raise ValueError(f"--languages names {sorted(missing)}, not found in column {lang_column!r} (found {sorted(found)}).")
        dataset = dataset.filter(lambda batch: [lang in keep for lang in batch[lang_column]], batched=True, desc="languages")

    present = Counter()
    for ds in dataset.values():
        present.update(ds[column])
    if any(not isinstance(label, str) or not label for label in present):
        bad = [label for label in present if not isinstance(label, str) or not label][:5]
        raise ValueError(f"Column {column!r} holds values that are not emotion names: {bad}.")
    label_names = list(data_args.labels) if data_args.labels else sorted(present)
    unlisted = {label: n for label, n in present.items() if label not in label_names}
    if unlisted:
        if not data_args.drop_unlisted_labels:
            raise ValueError(
                f"Column {column!r} has labels outside the label set {label_names}: "
                + ", ".join(f"{label!r} ({n} rows)" for label, n in sorted(unlisted.items()))
                + ". Map them with label_map, list them in labels, or set drop_unlisted_labels."
            )
        logger.warning(
            "Dropping %d rows whose label is not in %s: %s",
            sum(unlisted.values()),
            label_names,
            ", ".join(f"{label}={n}" for label, n in sorted(unlisted.items())),
        )
        keep_labels = set(label_names)
        dataset = dataset.filter(lambda batch: [l in keep_labels for l in batch[column]], batched=True, desc="label set")
    absent = [label for label in label_names if present.get(label, 0) == 0]
    if absent:
        raise ValueError(f"Labels {absent} are in the label set but have no rows in column {column!r}.")
    return dataset, label_names
