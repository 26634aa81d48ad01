"""IEMOCAP, the Interactive Emotional Dyadic Motion Capture database (English).

Layout (IEMOCAP_full_release, as distributed by USC SAIL): for each session n = 1..5,
``Session{n}/dialog/EmoEvaluation/<dialog>.txt`` (one per dialog; the Categorical/, Attribute/ and
Self-evaluation/ subfolders are not read) and ``Session{n}/sentences/wav/<dialog>/<utterance>.<ext>``;
``Session{n}/dialog/transcriptions/<dialog>.txt`` fills the text column when present. The root may be
IEMOCAP_full_release or its parent. Any audio extension is accepted. A copy with fewer sessions loads
what it has.

Label source: the EmoEvaluation files' summary lines
``[START - END]<TAB><utterance>[TAB]<code>[TAB][V, A, D]`` (the consensus label). Codes: neu neutral,
hap happy, exc excited, sad sad, ang angry, fru frustrated, sur surprise, fea fear, dis disgust,
oth other, xxx no_agreement (the evaluators had no majority). The usual 4-class set
(angry, happy, neutral, sad with excited merged into happy) has 5,531 utterances:
``labels=["angry", "happy", "neutral", "sad"], merge_excited=True``.

Speaker: the utterance id's last field starts with the speaking actor's gender (Ses01F_impro01_M003 is the
male actor of session 1, although the dialog name says F), so speakers are ``iemocap_Ses01F`` ..
``iemocap_Ses05M`` (10 actors). Fold: ``Session1`` .. ``Session5`` (leave-one-session-out).

Options:
    merge_excited: map excited to happy (the papers' 4-class setup); default False.
    transcripts: read the transcriptions into a text column; default True.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .base import CorpusReader, CorpusReport, Utterance, descend_into, find_child, index_by_stem
from .registry import register_corpus

_SESSION = re.compile(r"^Session(\d+)$", re.IGNORECASE)
_SUMMARY = re.compile(r"^\[\s*([\d.]+)\s*-\s*([\d.]+)\s*\]\s+(\S+)\s+(\S+)\s+\[([^\]]*)\]")
_TRANSCRIPT = re.compile(r"^(\S+)\s+\[[^\]]*\]:\s?(.*)$")
_UTTERANCE = re.compile(r"^(Ses\d+)[FM]_.+_([FM])[^_]*$")


@register_corpus
class IemocapReader(CorpusReader):
    name = "iemocap"
    language = "en"
    layout = (
        "<root>/Session{1..5}/dialog/EmoEvaluation/<dialog>.txt and "
        "<root>/Session{1..5}/sentences/wav/<dialog>/<utterance>.<ext> "
        "(root = IEMOCAP_full_release or its parent)"
    )
    label_names = {
        "neu": "neutral", "hap": "happy", "exc": "excited", "sad": "sad", "ang": "angry", "fru": "frustrated",
        "sur": "surprise", "fea": "fear", "dis": "disgust", "oth": "other", "xxx": "no_agreement",
    }  # fmt: skip
    extra_columns = ("gender", "text", "dialog", "valence", "activation", "dominance")

    def __init__(self, *, merge_excited: bool = False, transcripts: bool = True):
        self.merge_excited = merge_excited
        self.transcripts = transcripts

    def option_label_map(self) -> dict[str, str]:
        return {"excited": "happy"} if self.merge_excited else {}

    def normalise_code(self, code: str) -> str:
        return code.lower()

    def scan(self, root: Path, report: CorpusReport):
        root = descend_into(root, ["IEMOCAP_full_release", "IEMOCAP"], _has_sessions)
        sessions = sorted(
            ((int(m[1]), Path(e.path)) for e in os.scandir(root) if e.is_dir() and (m := _SESSION.match(e.name))),
        )
        for number, session in sessions:
            evaluation = _child_path(session, "dialog", "EmoEvaluation")
            wav_root = _child_path(session, "sentences", "wav")
            if evaluation is None:
                report.add_skipped("session without dialog/EmoEvaluation", str(session))
                continue
            texts = self._read_transcripts(session) if self.transcripts else {}
            for label_file in sorted(evaluation.glob("*.txt")):
                if label_file.name.startswith("."):
                    continue
                dialog = label_file.stem
                audio = index_by_stem(wav_root / dialog) if wav_root is not None else {}
                for start, end, utterance, code, vad in _read_summary_lines(label_file):
                    report.files_seen += 1
                    match = _UTTERANCE.match(utterance)
                    if match is None:
                        report.add_unparsable(f"{label_file}: {utterance}")
                        continue
                    path = audio.get(utterance)
                    if path is None:
                        report.add_skipped(
                            "labelled utterance without audio in sentences/wav/<dialog>/", f"{dialog}/{utterance}"
                        )
                        continue
                    if self.transcripts and utterance not in texts:
                        report.add_note("no transcript in dialog/transcriptions (empty text)", f"{dialog}/{utterance}")
                    gender_letter = match[2]
                    valence, activation, dominance = (list(vad) + ["", "", ""])[:3]
                    yield Utterance(
                        path=str(path),
                        code=code,
                        speaker=f"iemocap_{match[1]}{gender_letter}",
                        fold=f"Session{number}",
                        extra={
                            "gender": "female" if gender_letter == "F" else "male",
                            "text": texts.get(utterance, ""),
                            "dialog": dialog,
                            "valence": valence,
                            "activation": activation,
                            "dominance": dominance,
                        },
                    )

    @staticmethod
    def _read_transcripts(session: Path) -> dict[str, str]:
        folder = _child_path(session, "dialog", "transcriptions")
        texts: dict[str, str] = {}
        if folder is None:
            return texts
        for file in sorted(folder.glob("*.txt")):
            if file.name.startswith("."):
                continue
            for line in _read_text(file).splitlines():
                match = _TRANSCRIPT.match(line.strip())
                if match:
                    texts[match[1]] = match[2].strip()
        return texts


def _has_sessions(root: Path) -> bool:
    return root.is_dir() and any(e.is_dir() and _SESSION.match(e.name) for e in os.scandir(root))


def _child_path(root: Path, *names: str) -> Path | None:
    for name in names:
        root = find_child(root, name)
        if root is None:
            return None
    return root


def _read_summary_lines(label_file: Path):
    for line in _read_text(label_file).splitlines():
        match = _SUMMARY.match(line.strip())
        if match:
            start, end, utterance, code, vad = match.groups()
            yield start, end, utterance, code, [value.strip() for value in vad.split(",") if value.strip()]


def _read_text(file: Path) -> str:
    data = file.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")
