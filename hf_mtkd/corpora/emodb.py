"""EmoDB, the Berlin Database of Emotional Speech (German).

Layout (as distributed, e.g. emodb.zip from emodb.bilderbar.info): ``<root>/wav/SSTTTEV.<ext>``. The
reader searches the whole root, so a root that is the ``wav`` folder itself, or that also holds the
distribution's label folders (``lablaut``, ``silb``, ...), works too; any audio extension is accepted.

Label source: the corpus documentation (Burkhardt et al., Interspeech 2005). File name ``SSTTTEV``:
SS speaker (03, 08-16), TTT text code (a01-a07, b01-b10), E emotion letter, V version letter.
Emotion letters (German): W Wut -> angry, L Langeweile -> boredom, E Ekel -> disgust, A Angst -> fear,
F Freude -> happy, T Trauer -> sad, N neutral -> neutral. Gender from the documentation: speakers 03, 10,
11, 12, 15 male, 08, 09, 13, 14, 16 female.
Fold: the speaker (EmoDB has no official split); the 535-file release has 10 speakers.
"""

from __future__ import annotations

import re
from pathlib import Path

from .base import CorpusReader, CorpusReport, Utterance, iter_named_files
from .registry import register_corpus

_NAME = re.compile(r"^(?P<speaker>\d{2})(?P<text>[a-z]\d{2})(?P<emotion>[A-Z])(?P<version>[a-z])$")
_MALE = {"03", "10", "11", "12", "15"}
_FEMALE = {"08", "09", "13", "14", "16"}


@register_corpus
class EmoDBReader(CorpusReader):
    """EmoDB reader; no options."""

    name = "emodb"
    language = "de"
    layout = (
        "<root>/wav/SSTTTEV.<ext> (SS speaker, TTT text code, E emotion letter W/L/E/A/F/T/N, V version), "
        "e.g. wav/03a01Fa.wav"
    )
    label_names = {"W": "angry", "L": "boredom", "E": "disgust", "A": "fear", "F": "happy", "T": "sad", "N": "neutral"}
    extra_columns = ("gender", "text_id")

    def scan(self, root: Path, report: CorpusReport):
        for path, match in iter_named_files(root, report, _NAME):
            spk = match["speaker"]
            gender = "male" if spk in _MALE else "female" if spk in _FEMALE else ""
            speaker = f"emodb_{spk}"
            yield Utterance(
                path=str(path),
                code=match["emotion"],
                speaker=speaker,
                fold=speaker,
                extra={"gender": gender, "text_id": match["text"]},
            )
