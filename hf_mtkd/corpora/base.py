"""What every corpus reader shares: the row it finds, the report it keeps, and turning rows into a DatasetDict.

A reader (one module per corpus) only knows its corpus' layout: it walks the root and yields one
`Utterance` per audio file with the corpus' own label code. `CorpusReader.load` does the rest, the
same way for every corpus: code -> emotion name through the reader's table, the reader's option
mapping (e.g. IEMOCAP `merge_excited`), the user's `label_map`, the `labels` selection, and the
`datasets.DatasetDict` with an `Audio()` column built from file paths (decoded on access).

Nothing is mapped silently: a code missing from the reader's table, a file name the reader cannot
parse, an annotation row whose audio is missing and a row dropped by `labels` are all counted in a
`CorpusReport`, logged (logger ``hf_mtkd.corpora``) and returned by ``load(..., return_report=True)``.
"""

from __future__ import annotations

import re

import logging
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from datasets import Audio, Dataset, DatasetDict, Features, Value

logger = logging.getLogger("hf_mtkd.corpora")

#: File extensions (lower case, no dot) taken as audio, or media with an audio stream (torchcodec decodes those
#: too): what corpus readers and `hf-mtkd predict` pick up from folders.
AUDIO_EXTENSIONS = frozenset(
    {
        "wav", "wave", "flac", "mp3", "ogg", "oga", "opus", "m4a", "aac", "aif", "aiff", "aifc",
        "au", "snd", "caf", "sph", "nist", "wma", "wv", "ape", "mka", "webm", "mp4", "m4v", "mkv",
        "mov", "avi", "raw", "pcm",
    }
)  # fmt: skip

#: The columns every reader returns, in this order; readers may add more after them (gender, text, ...).
#: Select these before concatenating corpora whose extra columns differ.
CORE_COLUMNS = ("audio", "label", "original_label", "language", "speaker", "fold")


# When one file exists with two extensions (a partial re-encode), this one is kept.
_EXTENSION_PREFERENCE = ("wav", "flac", "aiff", "aif", "ogg", "opus", "mp3", "m4a", "mp4")

# Canonical splits for corpora that ship an official train/dev/test division.
SPLIT_ORDER = ("train", "validation", "test")

_EXAMPLES_KEPT = 5
_LFS_POINTER = b"version https://git-lfs"


class CorpusLayoutError(ValueError):
    """The root exists but does not hold the corpus in the layout the reader expects."""


@dataclass
class Utterance:
    """One audio file found by a reader, before any label mapping.

    `code` is the corpus' own label code exactly as found (file-name letter, CSV value, ...).
    `extra` holds the reader's additional string columns (its `extra_columns`).
    `note`: something the user should know about this row, counted in the report if the row is kept.
    """

    path: str
    code: str
    speaker: str
    fold: str
    split: str = "train"
    extra: dict[str, str] = field(default_factory=dict)
    note: str = ""


@dataclass
class CorpusReport:
    """Counts of what a reader found, kept, mapped and dropped; `summary()` is what gets logged."""

    corpus: str
    root: str
    files_seen: int = 0
    unknown_codes: Counter = field(default_factory=Counter)
    unknown_examples: list[str] = field(default_factory=list)
    unparsable: int = 0
    unparsable_examples: list[str] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    skipped_examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    notes: Counter = field(default_factory=Counter)
    note_examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    dropped_by_label: Counter = field(default_factory=Counter)
    kept: dict[str, Counter] = field(default_factory=dict)

    def add_unknown(self, code: str, where: str) -> None:
        self.unknown_codes[code] += 1
        if len(self.unknown_examples) < _EXAMPLES_KEPT:
            self.unknown_examples.append(f"{where} (code {code!r})")

    def add_unparsable(self, where: str) -> None:
        self.unparsable += 1
        if len(self.unparsable_examples) < _EXAMPLES_KEPT:
            self.unparsable_examples.append(where)

    def add_skipped(self, reason: str, where: str) -> None:
        self.skipped[reason] += 1
        if len(self.skipped_examples[reason]) < _EXAMPLES_KEPT:
            self.skipped_examples[reason].append(where)

    def add_note(self, note: str, where: str) -> None:
        """Something about a kept row the user should know (e.g. a file missing from the fold lists)."""
        self.notes[note] += 1
        if len(self.note_examples[note]) < _EXAMPLES_KEPT:
            self.note_examples[note].append(where)

    @property
    def n_unknown(self) -> int:
        """Rows dropped because their label code is not in the reader's table."""
        return sum(self.unknown_codes.values())

    @property
    def n_rows(self) -> int:
        return sum(sum(counts.values()) for counts in self.kept.values())

    def summary(self) -> str:
        lines = [f"{self.corpus} at {self.root}: {self.files_seen} files/annotations seen, {self.n_rows} rows kept"]
        for split, counts in self.kept.items():
            lines.append(f"  {split}: {sum(counts.values())} rows; " + _format_counts(counts))
        if self.unknown_codes:
            lines.append(
                f"  unknown label codes (dropped, not mapped): {self.n_unknown} rows; "
                + _format_counts(self.unknown_codes)
                + "; e.g. "
                + ", ".join(self.unknown_examples)
            )
        if self.unparsable:
            lines.append(
                f"  unparsable names (dropped): {self.unparsable}; e.g. " + ", ".join(self.unparsable_examples)
            )
        for reason, n in sorted(self.skipped.items()):
            lines.append(f"  skipped, {reason}: {n}; e.g. " + ", ".join(self.skipped_examples[reason]))
        for note, n in sorted(self.notes.items()):
            lines.append(f"  note, {note}: {n}; e.g. " + ", ".join(self.note_examples[note]))
        if self.dropped_by_label:
            lines.append(
                f"  dropped by the label selection: {sum(self.dropped_by_label.values())} rows; "
                + _format_counts(self.dropped_by_label)
            )
        return "\n".join(lines)


def _format_counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{key}={n}" for key, n in sorted(counts.items()))


class CorpusReader:
    """Base class of the corpus readers: subclasses set the class attributes and implement `scan`.

    Class attributes:
        name: registry name (lowercase).
        language: ISO 639-1 code of the speech.
        layout: the directory layout the reader expects, quoted in every layout error.
        label_names: the corpus' own code -> harmonised emotion name (lowercase English).
        extra_columns: the string columns the reader adds after CORE_COLUMNS.
        splits: the splits `scan` may put rows in.
    Reader options are keyword arguments of the subclass' `__init__`, so a misspelt option is a TypeError.
    """

    name: ClassVar[str]
    language: ClassVar[str]
    layout: ClassVar[str]
    label_names: ClassVar[Mapping[str, str]]
    extra_columns: ClassVar[tuple[str, ...]] = ()
    splits: ClassVar[tuple[str, ...]] = ("train",)

    # -- what a subclass implements -------------------------------------------------------------

    def scan(self, root: Path, report: CorpusReport) -> Iterable[Utterance]:
        """Yield one Utterance per audio file under `root`; count what cannot be read in `report`."""
        raise NotImplementedError

    def option_label_map(self) -> dict[str, str]:
        """Name -> name mapping the reader's own options ask for (applied before the user's `label_map`)."""
        return {}

    def normalise_code(self, code: str) -> str:
        """The key looked up in `label_names` for a code as found (default: unchanged)."""
        return code

    # -- shared ------------------------------------------------------------------------------------

    def layout_error(self, root: Path, problem: str) -> CorpusLayoutError:
        return CorpusLayoutError(f"{self.name}: {problem} under {str(root)!r}. Expected layout: {self.layout}")

    def load(
        self,
        root: str | os.PathLike,
        *,
        labels: Sequence[str] | None = None,
        label_map: Mapping[str, str] | None = None,
        return_report: bool = False,
    ) -> DatasetDict | tuple[DatasetDict, CorpusReport]:
        """Read the corpus at `root` into a DatasetDict (see the module docstring for the steps)."""
        root = Path(root).expanduser()
        if not root.exists():
            raise FileNotFoundError(f"{self.name}: corpus root {str(root)!r} does not exist. Expected layout: "
                                    f"{self.layout}")
        if not root.is_dir():
            raise NotADirectoryError(f"{self.name}: corpus root {str(root)!r} is not a folder. Expected layout: "
                                     f"{self.layout}")
        user_map = _check_label_map(label_map)
        self._check_map_keys(user_map)
        mapping = _compose_maps(self.option_label_map(), user_map)
        keep = _check_labels(labels)

        report = CorpusReport(corpus=self.name, root=str(root))
        found: list[tuple[Utterance, str]] = []
        for utt in self.scan(root, report):
            name = self.label_names.get(self.normalise_code(utt.code))
            if name is None:
                report.add_unknown(utt.code, utt.path)
                continue
            found.append((utt, name))
        found = [(utt, name) for utt, name in found if not _is_empty_file(utt.path, report)]
        if not found:
            raise self.layout_error(root, _nothing_found(report))
        if report.unknown_codes:
            logger.warning(
                "%s: dropped %d rows whose label code is not in the reader's table (never mapped): %s; e.g. %s",
                self.name,
                report.n_unknown,
                _format_counts(report.unknown_codes),
                ", ".join(report.unknown_examples),
            )
        if report.unparsable:
            logger.warning(
                "%s: dropped %d files whose names are not in the expected form; e.g. %s",
                self.name,
                report.unparsable,
                ", ".join(report.unparsable_examples),
            )
        for reason, n in sorted(report.skipped.items()):
            logger.warning(
                "%s: skipped %d files (%s); e.g. %s", self.name, n, reason, ", ".join(report.skipped_examples[reason])
            )

        rows: dict[str, list[tuple[Utterance, str]]] = defaultdict(list)
        for utt, name in found:
            label = mapping.get(name, name)
            if keep is not None and label not in keep:
                report.dropped_by_label[label] += 1
                continue
            rows[utt.split].append((utt, label))
            if utt.note:
                report.add_note(utt.note, utt.path)
        for note, n in sorted(report.notes.items()):
            logger.warning("%s: %d rows %s; e.g. %s", self.name, n, note, ", ".join(report.note_examples[note]))
        if report.dropped_by_label:
            logger.info(
                "%s: labels=%s dropped %d rows: %s",
                self.name,
                list(labels),
                sum(report.dropped_by_label.values()),
                _format_counts(report.dropped_by_label),
            )
        if not rows:
            raise ValueError(
                f"{self.name}: no rows left after the label selection {list(labels)}; "
                f"the corpus has {_format_counts(report.dropped_by_label)} (after label_map)."
            )
        if keep is not None:
            present = {label for split_rows in rows.values() for _, label in split_rows}
            absent = [label for label in labels if label not in present]
            if absent:
                logger.warning("%s: labels %s were asked for but no row has them.", self.name, absent)

        dataset = DatasetDict(
            {split: self._build_split(rows[split], report, split) for split in self.splits if rows.get(split)}
        )
        logger.info("%s", report.summary())
        return (dataset, report) if return_report else dataset

    def _check_map_keys(self, user_map: Mapping[str, str]) -> None:
        names = set(self.label_names.values()) | set(self.option_label_map().values())
        for key in user_map:
            if key in names:
                continue
            code_of = self.label_names.get(self.normalise_code(key))
            if code_of is not None:
                logger.warning(
                    "%s: label_map key %r is a label code; label_map maps emotion names, so write %r.",
                    self.name,
                    key,
                    code_of,
                )
            else:
                logger.info("%s: label_map key %r names no label of this corpus (%s).", self.name, key, sorted(names))

    def _build_split(self, rows: list[tuple[Utterance, str]], report: CorpusReport, split: str) -> Dataset:
        rows = sorted(rows, key=lambda row: row[0].path)
        utts = [utt for utt, _ in rows]
        columns: dict[str, list[str]] = {
            "audio": [utt.path for utt in utts],
            "label": [label for _, label in rows],
            "original_label": [utt.code for utt in utts],
            "language": [self.language] * len(rows),
            "speaker": [utt.speaker for utt in utts],
            "fold": [utt.fold for utt in utts],
        }
        for column in self.extra_columns:
            columns[column] = [utt.extra.get(column, "") for utt in utts]
        features = Features({column: Audio() if column == "audio" else Value("string") for column in columns})
        report.kept[split] = Counter(columns["label"])
        return Dataset.from_dict(columns, features=features)


# -- helpers for readers ---------------------------------------------------------------------------


def iter_audio_files(root: Path) -> Iterator[Path]:
    """Audio files under `root` (any depth, symlinks followed), hidden files and folders skipped, sorted."""
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for file in sorted(files):
            if not file.startswith(".") and extension(file) in AUDIO_EXTENSIONS:
                yield Path(folder, file)


def extension(file: str | os.PathLike) -> str:
    return os.path.splitext(os.fspath(file))[1].lstrip(".").lower()


def unique_by_stem(paths: Iterable[Path], report: CorpusReport, *, per_folder: bool = False) -> list[Path]:
    """One path per file stem (per folder if `per_folder`): the same recording with two extensions counts once.

    The extra copies are counted in `report` as skipped duplicates.
    """
    groups: dict[tuple[str, str], list[Path]] = defaultdict(list)
    for path in paths:
        groups[(str(path.parent) if per_folder else "", path.stem)].append(path)
    kept = []
    for group in groups.values():
        group.sort(key=_preference)
        kept.append(group[0])
        for other in group[1:]:
            report.add_skipped("duplicate recording under another extension or folder", str(other))
    return sorted(kept)


def index_by_stem(folder: Path) -> dict[str, Path]:
    """stem -> audio file in one folder (not recursive), preferring wav/flac when a stem has several files."""
    index: dict[str, Path] = {}
    if not folder.is_dir():
        return index
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith(".") or extension(entry.name) not in AUDIO_EXTENSIONS or not entry.is_file():
            continue
        path = Path(entry.path)
        if path.stem not in index or _preference(path) < _preference(index[path.stem]):
            index[path.stem] = path
    return index


def find_child(root: Path, *names: str) -> Path | None:
    """The first of `names` that is a folder under `root` (exact case first, then case-insensitive)."""
    for name in names:
        if (root / name).is_dir():
            return root / name
    lowered = {name.lower() for name in names}
    if root.is_dir():
        for entry in sorted(os.scandir(root), key=lambda e: e.name):
            if entry.name.lower() in lowered and entry.is_dir():
                return Path(entry.path)
    return None


def descend_into(root: Path, wrapper_names: Sequence[str], is_corpus_root) -> Path:
    """`root`, or its distribution wrapper folder (e.g. IEMOCAP_full_release) when the user gave its parent."""
    if is_corpus_root(root):
        return root
    wrapper = find_child(root, *wrapper_names)
    if wrapper is not None and is_corpus_root(wrapper):
        return wrapper
    return root


def _preference(path: Path) -> tuple[int, str]:
    ext = extension(path)
    rank = _EXTENSION_PREFERENCE.index(ext) if ext in _EXTENSION_PREFERENCE else len(_EXTENSION_PREFERENCE)
    return rank, str(path)


def _is_empty_file(path: str, report: CorpusReport) -> bool:
    try:
        size = os.path.getsize(path)
    except OSError:
        report.add_skipped("audio file missing or unreadable", path)
        return True
    # 44 bytes is a WAV header with no samples.
    if size == 0 or (extension(path) in {"wav", "wave"} and size <= 44):
        report.add_skipped("empty audio file", path)
        return True
    if size < 1024:
        # A corpus cloned from a git-lfs repository without git-lfs holds ~130-byte pointer files.
        with open(path, "rb") as f:
            if f.read(len(_LFS_POINTER)) == _LFS_POINTER:
                report.add_skipped("git-lfs pointer file, not audio (fetch the files with git lfs pull)", path)
                return True
    return False


def _nothing_found(report: CorpusReport) -> str:
    if report.files_seen == 0:
        return "found no audio files or annotations"
    parts = [f"found {report.files_seen} files/annotations but no usable row"]
    if report.unparsable:
        parts.append(f"{report.unparsable} names not in the expected form (e.g. "
                     f"{', '.join(report.unparsable_examples)})")
    if report.unknown_codes:
        parts.append(f"{report.n_unknown} with unknown label codes {dict(report.unknown_codes)}")
    for reason, n in sorted(report.skipped.items()):
        parts.append(f"{n} skipped ({reason})")
    return "; ".join(parts)


def _check_label_map(label_map: Mapping[str, str] | None) -> dict[str, str]:
    if label_map is None:
        return {}
    if not isinstance(label_map, Mapping):
        raise TypeError(f"label_map must be a mapping of emotion name -> emotion name, got "
                        f"{type(label_map).__name__}.")
    bad = {key: value for key, value in label_map.items() if not isinstance(value, str) or not value}
    if bad:
        raise ValueError(f"label_map values must be non-empty emotion names, got {bad}.")
    return dict(label_map)


def _check_labels(labels: Sequence[str] | None) -> set[str] | None:
    if labels is None:
        return None
    if isinstance(labels, str) or not all(isinstance(label, str) and label for label in labels):
        raise TypeError(f"labels must be a list of emotion names, got {labels!r}.")
    if not labels:
        raise ValueError("labels is empty: pass None to keep every label, or the emotion names to keep.")
    return set(labels)


def _compose_maps(first: Mapping[str, str], second: Mapping[str, str]) -> dict[str, str]:
    """name -> second(first(name)) for every name either map touches (each map applied once, not transitively)."""
    names = set(first) | set(second)
    out = {}
    for name in names:
        mid = first.get(name, name)
        out[name] = second.get(mid, mid)
    return {name: target for name, target in out.items() if name != target}


def iter_named_files(
    root: Path, report: CorpusReport, pattern: "re.Pattern[str]"
) -> Iterator[tuple[Path, "re.Match[str]"]]:
    """Audio files under `root` whose stem matches `pattern` (the corpora that code labels in file names);
    every file is counted as seen, a stem that does not match is reported as unparsable."""
    for path in unique_by_stem(iter_audio_files(root), report):
        report.files_seen += 1
        match = pattern.match(path.stem)
        if match is None:
            report.add_unparsable(str(path))
            continue
        yield path, match
