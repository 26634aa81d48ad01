"""CaFE, the Canadian French Emotional speech dataset (French).

Layout (Zenodo, CaFE_48k.zip / CaFE_192k_{1,2}.zip; checked against the distribution's Readme.txt):
``<root>/<Émotion>/<Faible|Fort>/AA-E-I-S.<ext>`` for the six emotions and ``<root>/Neutre/AA-N-S.<ext>``
for neutral (which has no intensity). The 192 kHz version is split into two archives (actors 01-06 and
07-12, AIFF files); extract both under one root. The label is read from the file name, never from the
folder, so the folders' accented names (Colère, Dégoût) and their Unicode normalisation do not matter;
any audio extension is accepted.

Label source: the distribution's Readme.txt (Gournay, Lahaie & Lefebvre, ACM MMSys 2018). AA actor
(01-12; odd men, even women), E emotion letter (C colère -> angry, D dégoût -> disgust, J joie -> happy,
N neutre -> neutral, P peur -> fear, S surprise -> surprise, T tristesse -> sad), I intensity (1 faible
-> low, 2 fort -> high), S sentence (1-6). 936 files: 12 actors x 6 sentences x (6 emotions x 2
intensities + neutral). The four-class subset (angry, happy, neutral, sad) has 504.

Fold: the actor. CaFE has no official split; the multi-teacher KD paper's "1 split" (420 train / 84 test
of the four classes) came from the authors' own file lists, which are not public: a 10-actor / 2-actor
speaker split gives exactly 420 / 84, and can be made from the fold column.
"""

from __future__ import annotations

import re
from pathlib import Path

from .base import CorpusReader, CorpusReport, Utterance, iter_named_files
from .registry import register_corpus

_NAME = re.compile(r"^(?P<actor>\d{2})-(?P<emotion>[A-Za-z])-(?:(?P<intensity>\d)-)?(?P<sentence>\d)$")
_INTENSITY = {"1": "low", "2": "high"}


@register_corpus
class CaFEReader(CorpusReader):
    """CaFE reader; no options."""

    name = "cafe"
    language = "fr"
    layout = (
        "<root>/<Émotion>/<Faible|Fort>/AA-E-I-S.<ext> and <root>/Neutre/AA-N-S.<ext> "
        "(actor, emotion letter C/D/J/N/P/S/T, intensity 1/2, sentence 1-6), e.g. Colère/Fort/01-C-2-1.wav"
    )
    label_names = {
        "C": "angry",
        "D": "disgust",
        "J": "happy",
        "N": "neutral",
        "P": "fear",
        "S": "surprise",
        "T": "sad",
    }
    extra_columns = ("gender", "intensity", "sentence")

    def normalise_code(self, code: str) -> str:
        return code.upper()

    def scan(self, root: Path, report: CorpusReport):
        for path, match in iter_named_files(root, report, _NAME):
            actor = match["actor"]
            speaker = f"cafe_{actor}"
            intensity = match["intensity"]
            yield Utterance(
                path=str(path),
                code=match["emotion"],
                speaker=speaker,
                fold=speaker,
                extra={
                    "gender": "male" if int(actor) % 2 else "female",
                    "intensity": _INTENSITY.get(intensity, intensity) if intensity else "",
                    "sentence": match["sentence"],
                },
            )
