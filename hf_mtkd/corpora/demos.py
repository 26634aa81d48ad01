"""DEMoS, the Database of Elicited Mood in Speech (Italian).

Layout (Zenodo record 2544829, wav_DEMoS.zip, described by the distribution's README): emotional
samples in ``<root>/DEMOS/{PR,NP}_<g>_<SS>_<eee>....<ext>`` and neutral samples in
``<root>/NEU/<g>_<SS>_neu....<ext>``. The reader searches the whole root and parses names from the end,
as the README defines the fields: the last ``_`` field starts with the emotion (3 letters), the one
before is the speaker number, the one before that the gender letter (f/m); a leading PR (prototypical,
selected) or NP (non-prototypical) is kept in the ``prototypicality`` column ("" for neutral files).
Any audio extension is accepted.

Label source: the distribution's README (Parada-Cabaleiro et al., LRE 2020): col guilt, dis disgust,
gio happiness -> happy, pau fear, rab anger -> angry, sor surprise, tri sadness -> sad, neu neutral.
9,365 emotional + 332 neutral samples from 68 speakers. The self-distillation paper drops neutral:
pass the seven emotions as ``labels``.
Assumed (not in the README): speaker numbers are unique across genders (one numbering for all 68
speakers), so the speaker id is ``demos_<SS>``.

Folds. DEMoS ships no fold files; the papers' speaker-independent train/dev/test lists are their
authors' own. Assumed format for such lists, read when given or found:
  * ``fold_file=`` a CSV with a header holding ``fold`` and either ``file`` (a file name, with or without
    extension or folders: matched by stem) or ``speaker`` (the number SS, or ``demos_SS``); or
  * ``fold_file=`` a folder of CSVs, one per fold, named ``<fold>.csv`` (e.g. train.csv, devel.csv,
    test.csv), each listing file names in a ``file`` column or, without a header, in its first column.
Found without the option: ``<root>/folds.csv`` or ``<root>/folds/``. With fold files, a file they do not
list gets fold "unassigned" (counted and logged if the row is kept); listed files that are not found
are logged too.
Without fold files the fold is the speaker. Everything stays in one ``train`` split either way.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

from .base import CorpusReader, CorpusReport, Utterance, iter_audio_files, unique_by_stem
from .registry import register_corpus

logger = logging.getLogger("hf_mtkd.corpora")

_GENDER = {"f": "female", "m": "male"}
UNASSIGNED_FOLD = "unassigned"
_FILE_HEADERS = {name: "file" for name in ("filename", "file_name", "path", "wav", "audio", "name")}


@register_corpus
class DemosReader(CorpusReader):
    name = "demos"
    language = "it"
    layout = (
        "<root>/DEMOS/{PR,NP}_<g>_<SS>_<eee>*.<ext> and <root>/NEU/<g>_<SS>_neu*.<ext> (g gender f/m, SS speaker, "
        "eee emotion col/dis/gio/pau/rab/sor/tri/neu), e.g. DEMOS/PR_f_05_rab01a.wav; optional fold lists "
        "<root>/folds.csv (file|speaker, fold) or <root>/folds/<fold>.csv"
    )
    label_names = {
        "col": "guilt", "dis": "disgust", "gio": "happy", "pau": "fear",
        "rab": "angry", "sor": "surprise", "tri": "sad", "neu": "neutral",
    }  # fmt: skip
    extra_columns = ("gender", "prototypicality")

    def __init__(self, *, fold_file: str | os.PathLike | None = None):
        self.fold_file = Path(fold_file).expanduser() if fold_file is not None else None
        if self.fold_file is not None and not self.fold_file.exists():
            raise FileNotFoundError(f"demos: fold_file {str(self.fold_file)!r} does not exist.")

    def normalise_code(self, code: str) -> str:
        return code.lower()

    def scan(self, root: Path, report: CorpusReport):
        folds = self._read_folds(root)
        used_files: set[str] = set()
        for path in unique_by_stem(iter_audio_files(root), report):
            report.files_seen += 1
            tokens = path.stem.split("_")
            if len(tokens) < 3 or tokens[-3].lower() not in _GENDER or not tokens[-2].isdigit() or len(tokens[-1]) < 3:
                report.add_unparsable(str(path))
                continue
            number = tokens[-2]
            speaker = f"demos_{number}"
            if folds is None:
                fold = speaker
            else:
                by_file, by_speaker = folds
                fold = by_file.get(path.stem) or by_speaker.get(number) or UNASSIGNED_FOLD
                if path.stem in by_file:
                    used_files.add(path.stem)
            yield Utterance(
                path=str(path),
                code=tokens[-1][:3],
                speaker=speaker,
                fold=fold,
                extra={
                    "gender": _GENDER[tokens[-3].lower()],
                    "prototypicality": tokens[0].upper() if tokens[0].upper() in {"PR", "NP"} else "",
                },
                note=f"not in the fold files, kept with fold {UNASSIGNED_FOLD!r}" if fold == UNASSIGNED_FOLD else "",
            )
        if folds is not None:
            missing = sorted(set(folds[0]) - used_files)
            if missing:
                logger.warning(
                    "demos: %d files listed in the fold files were not found under the root, e.g. %s",
                    len(missing),
                    ", ".join(missing[:5]),
                )

    def _read_folds(self, root: Path) -> tuple[dict[str, str], dict[str, str]] | None:
        """(file stem -> fold, speaker number -> fold) from the fold files, or None without any."""
        source = self.fold_file
        if source is None:
            for candidate in (root / "folds.csv", root / "folds"):
                if candidate.exists():
                    source = candidate
                    break
        if source is None:
            return None
        by_file: dict[str, str] = {}
        by_speaker: dict[str, str] = {}
        if source.is_dir():
            csvs = sorted(p for p in source.iterdir() if p.suffix.lower() == ".csv" and not p.name.startswith("."))
            if not csvs:
                raise FileNotFoundError(f"demos: fold folder {str(source)!r} holds no <fold>.csv files.")
            for table in csvs:
                for row in _read_rows(table):
                    if row.get("file"):
                        by_file[_stem(row["file"])] = table.stem
            if not by_file:
                raise ValueError(f"demos: the fold CSVs in {str(source)!r} list no files.")
        else:
            for row in _read_rows(source):
                if not row.get("fold"):
                    continue
                if row.get("file"):
                    by_file[_stem(row["file"])] = row["fold"]
                elif row.get("speaker"):
                    by_speaker[row["speaker"].removeprefix("demos_")] = row["fold"]
            if not by_file and not by_speaker:
                raise ValueError(
                    f"demos: fold file {str(source)!r} needs a header with 'fold' and 'file' or 'speaker', and rows."
                )
        logger.info("demos: folds read from %s", source)
        return by_file, by_speaker


def _read_rows(table: Path) -> list[dict[str, str]]:
    with open(table, newline="", encoding="utf-8-sig") as f:
        rows = [row for row in csv.reader(f) if row and any(cell.strip() for cell in row)]
    if not rows:
        return []
    header = [_FILE_HEADERS.get(cell.strip().lower(), cell.strip().lower()) for cell in rows[0]]
    if {"file", "fold", "speaker"} & set(header):
        return [{key: value.strip() for key, value in zip(header, row)} for row in rows[1:]]
    return [{"file": row[0].strip()} for row in rows]  # a bare list of files, one per line


def _stem(name: str) -> str:
    return Path(name.replace("\\", "/")).stem
