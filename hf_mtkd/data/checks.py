"""Checks on the data as a whole that would otherwise let a run finish, exit 0 and be wrong.

Each either raises naming the file, class, speaker or language, or adds a warning to the DataReport.
All run before any audio is decoded (cheap: file paths and metadata columns only).
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from typing import Any, Mapping, Optional, Sequence

from datasets import Audio, DatasetDict

from ..arguments import DataArguments
from .report import DataReport, first_few


def describe_data_source(data_args: DataArguments) -> str:
    """The data source as the user named it, for messages."""
    if data_args.data_dir:
        return f"data_dir {data_args.data_dir!r} (metadata.csv)"
    if data_args.dataset_path:
        return f"dataset_path {data_args.dataset_path!r}"
    if data_args.corpus:
        return f"corpus {data_args.corpus}"
    if data_args.dataset_name:
        return f"dataset_name {data_args.dataset_name!r}"
    return "the demo corpus"


def _file_paths(ds, column: str) -> list[Optional[str]]:
    """The file each row's audio comes from; None for audio embedded as bytes or arrays (no file to repeat)."""
    feature = ds.features[column]
    if isinstance(feature, Audio):
        # Arrow view: reads the path strings without decoding (or even loading) the audio.
        cells = ds.with_format("arrow")[column].combine_chunks()
        paths = cells.field("path").to_pylist()
        embedded = cells.field("bytes").is_valid().to_pylist()
        return [None if has_bytes or not path else path for path, has_bytes in zip(paths, embedded)]
    if getattr(feature, "dtype", None) == "string":
        return list(ds[column])
    return [None] * len(ds)


def check_duplicate_files(dataset: DatasetDict, data_args: DataArguments) -> None:
    """The same audio file listed twice (in one split or two) counts twice, or leaks test clips into training."""
    where: dict[str, list[str]] = defaultdict(list)
    for split, ds in dataset.items():
        for path in _file_paths(ds, data_args.audio_column_name):
            if path:
                where[os.path.normpath(path)].append(split)
    repeated = {path: splits for path, splits in where.items() if len(splits) > 1}
    if repeated:
        described = [
            f"{path} ({len(splits)} times: {', '.join(f'{s} x{n}' for s, n in sorted(Counter(splits).items()))})"
            for path, splits in sorted(repeated.items())
        ]
        raise ValueError(
            f"{describe_data_source(data_args)} lists {len(repeated)} audio file(s) more than once: "
            f"{first_few(described)}. "
            "Each clip must appear in one row."
        )


def check_label_coverage(splits: DatasetDict, label_names: Sequence[str], column: str, report: DataReport) -> None:
    """A class with no training clip is an error; one absent from validation or test is a warning."""
    counts = {role: Counter(splits[role][column]) for role in splits}
    table = "; ".join(f"{role}: " + ", ".join(f"{label} "
                                              f"{counts[role][label]}" for label in label_names) for role in splits)
    untrained = [label for label in label_names if counts["train"][label] == 0]
    if untrained:
        raise ValueError(
            f"Class(es) {untrained} have no training clips (clips per class: {table}). Add data, change the split, "
            "or leave them out of `labels`."
        )
    for role in ("validation", "test"):
        missing = [label for label in label_names if counts[role][label] == 0]
        if missing:
            report.warn(
                f"Class(es) {missing} have no clips in the {role} split: their recall is not measured there and "
                f"UR averages over the other classes (clips per class: {table})."
            )


def check_validation_size(splits: DatasetDict, data_args: DataArguments, report: DataReport) -> None:
    """Warn, per language, about classes with fewer than `validation_min_clips` validation clips: the checkpoint kept
    is the one with the best validation UR, and a recall measured on a handful of clips moves by tens of points."""
    minimum = data_args.validation_min_clips
    if not minimum or "validation" not in splits:
        return
    ds = splits["validation"]
    labels = [str(label) for label in ds[data_args.label_column_name]]
    column = data_args.language_column_name
    languages = [str(v) for v in ds[column]] if column and column in ds.column_names else [""] * len(labels)
    counts = Counter(zip(languages, labels))
    for language in sorted(set(languages)):
        few = {label: n for (lang, label), n in sorted(counts.items()) if lang == language and n < minimum}
        if few:
            where = f"language {language!r}" if language else "the validation split"
            report.warn(
                f"Validation data for {where} has fewer than {minimum} clips (validation_min_clips) of "
                + ", ".join(f"{label} ({n})" for label, n in few.items())
                + ": model selection on so few clips follows noise. Add validation speakers (validation_fraction), "
                "or use best_model_smoothing."
            )


def check_language_coverage(splits: DatasetDict, column: Optional[str], report: DataReport) -> None:
    """A language in validation or test that training never saw is scored like the others in the per-language
    tables: warn, naming it, so that a high or low number there is read as what it is (zero-shot)."""
    if not column or any(column not in ds.column_names for ds in splits.values()):
        return
    trained = {str(lang) for lang in splits["train"].unique(column)}
    for role in ("validation", "test"):
        if role not in splits:
            continue
        counts = Counter(str(lang) for lang in splits[role][column])
        unseen = {lang: n for lang, n in sorted(counts.items()) if lang not in trained}
        if unseen:
            report.warn(
                f"Language(s) {list(unseen)} in the {role} split have no training clips ("
                + ", ".join(f"{lang} {n} clip(s)" for lang, n in unseen.items())
                + f"; training languages: {sorted(trained)}): their {role} scores measure a language the model "
                "never heard."
            )


def check_speaker_overlap(splits: DatasetDict, data_args: DataArguments, report: DataReport) -> None:
    """Test speakers also heard in training (or validation) make test scores speaker-dependent."""
    column = data_args.speaker_column_name
    if not column or any(column not in ds.column_names for ds in splits.values()):
        return
    speakers = {role: {str(s) for s in ds.unique(column)} for role, ds in splits.items()}
    problems = []
    for role in ("train", "validation"):
        shared = sorted(speakers["test"] & speakers[role])
        if shared:
            problems.append(f"{len(shared)} of the {len(speakers['test'])} test speakers are also in {role} "
                            f"({first_few(shared)})")
    if not problems:
        return
    message = f"Column {column!r}: " + "; ".join(problems) + ", so test scores are not speaker-independent."
    if data_args.on_speaker_overlap == "fail":
        raise ValueError(message + " (on_speaker_overlap: fail)")
    report.warn(message + " Set on_speaker_overlap: fail to make this an error.")


def _has_text(value) -> bool:
    return isinstance(value, str) and bool(value.strip())


def check_transcripts(splits: DatasetDict, data_args: DataArguments, report: DataReport) -> DatasetDict:
    """Every clip needs a transcript in `text_column_name` (methods that read text): a missing, empty or blank one
    is an error naming the clips, or with on_missing_text: skip the clip is dropped and listed in the report."""
    column = data_args.text_column_name
    out = {}
    for split, ds in splits.items():
        if column not in ds.column_names:
            raise ValueError(
                f"Column {column!r} (--text_column_name) not found in the {split} split of "
                f"{describe_data_source(data_args)}; "
                f"its columns are {ds.column_names}."
            )
        missing = [i for i, text in enumerate(ds[column]) if not _has_text(text)]
        if missing:
            paths = _file_paths(ds.select(missing), data_args.audio_column_name)
            names = [path or f"row {i}" for path, i in zip(paths, missing)]
            if data_args.on_missing_text == "fail":
                raise ValueError(
                    f"{len(missing)} clip(s) of the {split} split have no transcript in column {column!r}: "
                    f"{first_few(names)}. Fill them in, or set on_missing_text: skip to drop them (listed in the "
                    f"report)."
                )
            drop = set(missing)
            ds = ds.select([i for i in range(len(ds)) if i not in drop])
            report.skipped_clips[split] = report.skipped_clips.get(split, []) + [f"{name}: no "
                                                                                 f"transcript" for name in names]
            report.warn(f"{split}: skipped {len(missing)} clip(s) without a transcript (on_missing_text: skip): "
                        f"{first_few(names, 3)}")
        out[split] = ds
    _warn_single_transcript(out, column, report)
    return DatasetDict(out)


def _warn_single_transcript(splits: Mapping[str, Any], column: str, report: DataReport) -> None:
    """One transcript for every clip of a split (a placeholder, a column mix-up) leaves the text branch nothing to
    learn from or be scored on; the run still works, so this is a warning kept in the report."""
    same = {}
    for split, ds in splits.items():
        texts = {text.strip() for text in ds[column]}
        if len(ds) > 1 and len(texts) == 1:
            same[split] = texts.pop()
    if same:
        shown = ", ".join(f"{split} ({len(splits[split])} clips: {text!r})" for split, text in same.items())
        report.warn(f"Every clip has the same transcript in column {column!r} in split(s) {shown}: the text carries "
                    "no information about the emotion there. Check text_column_name and the transcripts.")
