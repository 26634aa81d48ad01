"""CREMA-D, the Crowd-sourced Emotional Multimodal Actors Dataset (English).

Layout (github.com/CheyneyComputerScience/CREMA-D): ``<root>/AudioWAV/AAAA_SSS_EEE_LL.wav`` and,
optionally, ``<root>/VideoDemographics.csv`` (columns ActorID, Age, Sex, Race, Ethnicity) from which the
gender column is filled. The reader searches the whole root, so the AudioWAV folder itself also works;
any audio extension is accepted (AudioMP3/ or FLAC re-encodes too; the same clip in two formats counts once).

Label source: the repository README (Cao et al., IEEE T-AC 2014). AAAA actor id (1001-1091), SSS
sentence code (12 sentences, e.g. DFA, IEO), EEE intended emotion (ANG angry, DIS disgust, FEA fear,
HAP happy, NEU neutral, SAD sad), LL level (LO low, MD medium, HI high, XX unspecified).
The labels are the intended (acted) emotions; the crowd-sourced perceived labels are not read.
The release has 7,442 clips from 91 actors. Known quirks of the distribution, handled here: copies
taken from GitHub without git-lfs hold LFS pointer files instead of audio (skipped and counted, as in
every reader); older copies name one clip 1040_ITH_SAD_X.wav (level "X", read as unspecified). The
repository's issue #8 reports 1076_MTI_NEU_XX and 1076_MTI_SAD_XX as unplayable or silent: they are
kept unless empty, so filter them if your copy has them broken.
Fold: the actor (no official split).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from .base import CorpusReader, CorpusReport, Utterance, iter_named_files
from .registry import register_corpus

_NAME = re.compile(r"^(?P<actor>\d{4})_(?P<sentence>[A-Z]{3})_(?P<emotion>[A-Z]{3})_(?P<level>[A-Z]{1,2})$")
_LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified", "X": "unspecified"}


@register_corpus
class CremaDReader(CorpusReader):
    """CREMA-D reader; no options."""

    name = "crema_d"
    language = "en"
    layout = (
        "<root>/AudioWAV/AAAA_SSS_EEE_LL.<ext> (actor id, sentence, emotion ANG/DIS/FEA/HAP/NEU/SAD, level) "
        "[+ <root>/VideoDemographics.csv], e.g. AudioWAV/1001_DFA_ANG_XX.wav"
    )
    label_names = {"ANG": "angry", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
    extra_columns = ("gender", "intensity", "sentence")

    def scan(self, root: Path, report: CorpusReport):
        genders = _read_genders(root)
        for path, match in iter_named_files(root, report, _NAME):
            speaker = f"crema_d_{match['actor']}"
            yield Utterance(
                path=str(path),
                code=match["emotion"],
                speaker=speaker,
                fold=speaker,
                extra={
                    "gender": genders.get(match["actor"], ""),
                    "intensity": _LEVELS.get(match["level"], match["level"]),
                    "sentence": match["sentence"],
                },
            )


def _read_genders(root: Path) -> dict[str, str]:
    for candidate in (root / "VideoDemographics.csv", root.parent / "VideoDemographics.csv"):
        if candidate.is_file():
            with open(candidate, newline="", encoding="utf-8-sig") as f:
                return {
                    row["ActorID"].strip(): row["Sex"].strip().lower()
                    for row in csv.DictReader(f)
                    if row.get("ActorID") and row.get("Sex")
                }
    return {}
