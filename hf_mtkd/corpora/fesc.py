"""FESC, the Finnish emotional speech corpus of Airas & Alku (Phonetica 2006), as used by the MTKD paper.

The corpus is not publicly distributed and its layout is not documented in public, so this reader
ASSUMES the following; every point is an assumption unless marked as known.

* Speakers (known from the MTKD authors' code): nine speakers with four-letter codes, TIRE, TIPE, JARA,
  MIKO, ANRO, RIGR, TUVA, PEKO, JAKA; the paper's nine folds are leave-one-speaker-out folds, numbered
  1-9 in that order (`FESC_FOLD_ORDER`).
* Label codes (known from the MTKD authors' code): 1 anger -> angry, 2 happiness -> happy, 3 neutral,
  4 sadness -> sad; code 5 is excluded there. Assumed: 5 is tenderness -> tender, the fifth emotion of
  Airas & Alku (neutral, sadness, joy, anger, tenderness).
* Layout (assumed): ``<root>/<SPEAKER>/<EMOTION>/<utterance>.<ext>``, one folder per speaker and below
  it one folder per emotion, named by the code (1-5) or by the emotion's Finnish or English name (viha /
  anger, ilo / joy / happiness, neutraali / neutral, suru / sadness, hellyys / tenderness; any case).
  Any audio extension is accepted.
* If your copy encodes the emotion in the file name instead, pass ``filename_pattern``: a regular
  expression searched in each file stem, with a named group ``emotion`` (a code or name as above) and
  optionally ``speaker`` (otherwise the speaker is the top folder under the root). Example for names
  like ``TIRE_3_017.wav``: ``filename_pattern=r"^(?P<speaker>[A-Z]{4})_(?P<emotion>\\d)_"``.

Columns: speaker ``fesc_<SPEAKER>``; fold ``<SPEAKER>`` (the speaker code, one fold per speaker).
"""

from __future__ import annotations

import re
from pathlib import Path

from .base import CorpusReader, CorpusReport, Utterance, iter_audio_files, unique_by_stem
from .registry import register_corpus

#: The MTKD authors' fold numbering: fold k (1-9) holds out speaker FESC_FOLD_ORDER[k - 1].
FESC_FOLD_ORDER = ("TIRE", "TIPE", "JARA", "MIKO", "ANRO", "RIGR", "TUVA", "PEKO", "JAKA")

_CODES = {"1": "angry", "2": "happy", "3": "neutral", "4": "sad", "5": "tender"}
_NAMES = {
    "viha": "angry", "anger": "angry", "angry": "angry",
    "ilo": "happy", "joy": "happy", "happiness": "happy", "happy": "happy",
    "neutraali": "neutral", "neutral": "neutral",
    "suru": "sad", "sadness": "sad", "sad": "sad",
    "hellyys": "tender", "tenderness": "tender", "tender": "tender",
}  # fmt: skip


@register_corpus
class FescReader(CorpusReader):
    name = "fesc"
    language = "fi"
    layout = (
        "<root>/<SPEAKER>/<EMOTION>/<utterance>.<ext> (assumed; SPEAKER e.g. TIRE, EMOTION a code 1-5 = "
        "anger/happiness/neutral/sadness/tenderness or its Finnish/English name), e.g. TIRE/1/001.wav; "
        "or pass filename_pattern= with an (?P<emotion>...) group"
    )
    label_names = {**_CODES, **_NAMES}

    def __init__(self, *, filename_pattern: str | None = None):
        self.pattern = None
        if filename_pattern is not None:
            self.pattern = re.compile(filename_pattern)
            if "emotion" not in self.pattern.groupindex:
                raise ValueError(f"fesc: filename_pattern needs a named group (?P<emotion>...), got "
                                 f"{filename_pattern!r}.")

    def normalise_code(self, code: str) -> str:
        return code.strip().lower()

    def scan(self, root: Path, report: CorpusReport):
        for path in unique_by_stem(iter_audio_files(root), report, per_folder=True):
            report.files_seen += 1
            parts = path.relative_to(root).parts
            folder_speaker = parts[0] if len(parts) >= 2 else None
            if self.pattern is not None:
                match = self.pattern.search(path.stem)
                if match is None:
                    report.add_unparsable(str(path))
                    continue
                code = match["emotion"]
                spk = match.groupdict().get("speaker") or folder_speaker
            else:
                code = parts[1] if len(parts) >= 3 else None
                spk = folder_speaker
            if not spk or code is None:
                report.add_unparsable(str(path))
                continue
            yield Utterance(path=str(path), code=code, speaker=f"fesc_{spk}", fold=spk)
