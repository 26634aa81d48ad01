"""From DataArguments to decoded train/validation/test splits, with every data check on the way."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from datasets import DatasetDict

from ..arguments import DataArguments
from .checks import (
    check_duplicate_files,
    check_label_coverage,
    check_language_coverage,
    check_speaker_overlap,
    check_validation_size,
)
from .labels import select_labels
from .preprocessing import prepare_audio_dataset
from .report import DataReport
from .sources import load_raw_dataset
from .splits import make_splits


@dataclass
class PreparedData:
    splits: DatasetDict  # train, validation, test: waveform, labels and the metadata columns
    label_names: list[str]  # in class-id order
    languages: list[str]  # languages of the training split (empty without a language column)
    report: DataReport  # warnings, skipped/truncated clips and drawn speakers, for run_summary.json and the card


#: A method's own check of the split metadata, run before decoding: `(splits, report) -> splits`.
SplitCheck = Callable[[DatasetDict, DataReport], DatasetDict]


def prepare_data(data_args: DataArguments, sampling_rate: int, checks: Sequence[SplitCheck] = ()) -> PreparedData:
    """Load, check, label, split and decode; errors (naming the culprit) come before any audio is decoded.
    `checks` are the method's own (`Method.data_checks`), run after the shared ones."""
    report = DataReport()
    raw = load_raw_dataset(data_args)
    check_duplicate_files(raw, data_args)
    raw, label_names = select_labels(raw, data_args, report)
    splits = make_splits(raw, data_args, report)
    check_speaker_overlap(splits, data_args, report)
    check_label_coverage(splits, label_names, data_args.label_column_name, report)
    check_language_coverage(splits, data_args.language_column_name, report)
    check_validation_size(splits, data_args, report)
    for check in checks:
        splits = check(splits, report)
    splits = prepare_audio_dataset(splits, data_args, sampling_rate, label_names, report)
    if any(report.skipped_clips.values()):  # a skipped clip may have been a class's last one
        check_label_coverage(splits, label_names, data_args.label_column_name, report)
    column = data_args.language_column_name
    languages = sorted(set(splits["train"][column])) if column and column in splits["train"].column_names else []
    return PreparedData(splits, label_names, languages, report)
