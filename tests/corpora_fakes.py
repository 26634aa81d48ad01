"""Fake mini-corpora in each corpus' native layout, for tests/test_corpora.py (and EmoDB / RAVDESS tones for the
recipe tests: `write_emodb`, `write_ravdess`).

Each `make_*` writes a few tiny (0.1 s, 16 kHz) audio files under `root` and returns the corpus root to
pass to the reader. The contents (and their planted faults) are listed in each docstring; the tests
assert against them.
"""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from testing_utils import LABELS

SR = 16_000
N_SAMPLES = SR // 10


@functools.lru_cache(maxsize=None)
def _audio_bytes(fmt: str) -> bytes:
    t = np.arange(N_SAMPLES) / SR
    buffer = io.BytesIO()
    sf.write(buffer, (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), SR, format=fmt, subtype="PCM_16")
    return buffer.getvalue()


_FORMATS = {".flac": "FLAC", ".aiff": "AIFF", ".aif": "AIFF"}


def write_audio(path: Path) -> Path:
    """A 0.1 s tone, FLAC or AIFF for those suffixes, WAV bytes for any other."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_audio_bytes(_FORMATS.get(path.suffix.lower(), "WAV")))
    return path


def write_mp4(path: Path) -> bool:
    """A 0.1 s AAC-in-MP4 clip made with the ffmpeg CLI; False when ffmpeg is not installed."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    wav = write_audio(path.with_suffix(".tmp.wav"))
    result = subprocess.run(
        [ffmpeg, "-v", "error", "-y", "-i", str(wav), "-c:a", "aac", str(path)], capture_output=True, check=False
    )
    wav.unlink()
    return result.returncode == 0 and path.is_file()


def make_emodb(root: Path) -> Path:
    """wav/: speakers 03 (male) and 08 (female); W, F, N, T, L, A, E letters; one .flac.

    Planted: 03a01Xa.wav (unknown letter X), notes.wav (unparsable), lablaut/03a01Fa.lablaut (not audio),
    ._03a01Wa.wav (macOS resource fork, hidden).
    """
    wav = root / "wav"
    for name in ["03a01Wa", "03a02Wb", "03a01Fa", "03b01Nc", "03a04Ta", "08a01La", "08a02Aa", "08b09Ea", "08a01Na"]:
        write_audio(wav / f"{name}.wav")
    write_audio(wav / "08a05Wa.flac")
    write_audio(wav / "03a01Xa.wav")
    write_audio(wav / "notes.wav")
    (root / "lablaut").mkdir(parents=True)
    (root / "lablaut" / "03a01Fa.lablaut").write_text("labels")
    (wav / "._03a01Wa.wav").write_bytes(b"\x00\x05\x16\x07")
    return root


def make_ravdess(root: Path) -> Path:
    """Audio_Speech_Actors_01-24/Actor_01 (male) and Actor_02 (female), speech, 10 usable files.

    Actor_01: neutral, calm x2, happy (strong), sad, angry; Actor_02: fear, disgust, surprise, calm.
    Planted: a song file (vocal channel 02), a video-only .mp4 (modality 02), an unknown emotion 09.
    """
    base = root / "Audio_Speech_Actors_01-24"
    for name in [
        "03-01-01-01-01-01-01", "03-01-02-01-01-01-01", "03-01-02-02-01-01-01", "03-01-03-02-01-01-01",
        "03-01-04-01-02-01-01", "03-01-05-01-01-02-01",
    ]:  # fmt: skip
        write_audio(base / "Actor_01" / f"{name}.wav")
    for name in ["03-01-06-01-01-01-02", "03-01-07-02-01-01-02", "03-01-08-01-01-01-02", "03-01-02-01-02-02-02"]:
        write_audio(base / "Actor_02" / f"{name}.wav")
    write_audio(base / "Actor_02" / "03-02-03-01-01-01-02.wav")  # song
    write_audio(base / "Actor_02" / "02-01-03-01-01-01-02.mp4")  # video-only (content irrelevant)
    write_audio(base / "Actor_02" / "03-01-09-01-01-01-02.wav")  # unknown emotion
    return root


def make_crema_d(root: Path) -> Path:
    """AudioWAV/ for actors 1001 (male) and 1002 (female) + VideoDemographics.csv; 6 usable clips.

    Planted: an old-style level "X" name (usable), a git-lfs pointer, a 44-byte header-only WAV,
    an unknown emotion code (CAL), an unparsable name.
    """
    wav = root / "AudioWAV"
    for name in ["1001_DFA_ANG_XX", "1001_IEO_HAP_HI", "1001_TIE_NEU_XX", "1002_DFA_SAD_LO", "1002_ITS_FEA_MD"]:
        write_audio(wav / f"{name}.wav")
    write_audio(wav / "1002_ITH_DIS_X.wav")
    (wav / "1002_IEO_ANG_HI.wav").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:" + "0" * 64 + "\nsize 72862\n"
    )
    (wav / "1001_MTI_SAD_XX.wav").write_bytes(_audio_bytes("WAV")[:44])
    write_audio(wav / "1001_DFA_CAL_XX.wav")
    write_audio(wav / "README.wav")
    (root / "VideoDemographics.csv").write_text("ActorID,Age,Sex,Race,Ethnicity\n1001,51,Male,Caucasian,Not "
                                                "Hispanic\n1002,21,Female,Caucasian,Not Hispanic\n")
    return root


def make_cafe(root: Path) -> Path:
    """Both 192 kHz archives' layout (CaFE_192k_1 actors 01-02, CaFE_192k_2 actor 07); 9 usable files.

    Actor 01 (male): C-1, C-2, J-2, T-1, N; actor 02 (female): D-2, P-1, N; actor 07 (male): S-2.
    Planted: an unknown emotion letter Z, a Readme.txt.
    """
    part1, part2 = root / "CaFE_192k_1", root / "CaFE_192k_2"
    for rel in [
        "Colère/Faible/01-C-1-1.aiff", "Colère/Fort/01-C-2-1.aiff", "Joie/Fort/01-J-2-3.aiff",
        "Tristesse/Faible/01-T-1-6.aiff", "Neutre/01-N-1.aiff", "Dégoût/Fort/02-D-2-2.aiff",
        "Peur/Faible/02-P-1-4.aiff", "Neutre/02-N-5.aiff",
    ]:  # fmt: skip
        write_audio(part1 / rel)
    write_audio(part2 / "Surprise" / "Fort" / "07-S-2-1.aiff")
    write_audio(part2 / "Surprise" / "Fort" / "07-Z-2-2.aiff")
    (part1 / "Readme.txt").write_text("CaFE")
    return root


def make_demos(root: Path) -> Path:
    """DEMOS/ (PR_/NP_ emotional) and NEU/ for speakers 01 (f), 02 (m), 03 (m); 8 usable files.

    Speaker 01: rab, gio, col, neu; speaker 02: tri, pau, dis; speaker 03: sor.
    Planted: an unknown emotion code (xyz), an unparsable name.
    """
    for name in [
        "PR_f_01_rab01a",
        "NP_f_01_gio02b",
        "PR_f_01_col03a",
        "PR_m_02_tri01a",
        "NP_m_02_pau04c",
        "PR_m_02_dis05a",
        "PR_m_03_sor01a",
    ]:
        write_audio(root / "DEMOS" / f"{name}.wav")
    write_audio(root / "NEU" / "f_01_neu01.wav")
    write_audio(root / "DEMOS" / "PR_m_03_xyz01a.wav")
    write_audio(root / "DEMOS" / "garbage.wav")
    return root


def make_fesc(root: Path) -> Path:
    """Assumed layout <SPEAKER>/<EMOTION>/: TIRE (codes 1-5), JARA (Finnish names); 8 usable files.

    TIRE: 1, 1, 2, 3, 4, 5; JARA: suru, viha. Planted: TIRE/9/ (unknown code), TIRE/loose.wav (no emotion folder).
    """
    for rel in [
        "TIRE/1/001.wav",
        "TIRE/1/002.wav",
        "TIRE/2/001.wav",
        "TIRE/3/001.wav",
        "TIRE/4/001.wav",
        "TIRE/5/001.wav",
    ]:
        write_audio(root / rel)
    write_audio(root / "JARA" / "suru" / "001.flac")
    write_audio(root / "JARA" / "Viha" / "001.wav")
    write_audio(root / "TIRE" / "9" / "001.wav")
    write_audio(root / "TIRE" / "loose.wav")
    return root


_IEMOCAP_EVAL = {
    # session -> dialog -> [(utterance, code, has_audio)]
    1: {
        "Ses01F_impro01": [
            ("Ses01F_impro01_F000", "neu", True), ("Ses01F_impro01_M000", "fru", True),
            ("Ses01F_impro01_F001", "ang", True), ("Ses01F_impro01_M001", "xxx", True),
            ("Ses01F_impro01_F002", "zzz", True), ("Ses01F_impro01_M002", "sad", False),
        ],
        "Ses01M_script01_1": [
            ("Ses01M_script01_1_F000", "exc", True), ("Ses01M_script01_1_M000", "hap", True),
        ],
    },
    2: {"Ses02F_impro02": [("Ses02F_impro02_F000", "sad", True), ("Ses02F_impro02_M000", "exc", True)]},
}  # fmt: skip


def make_iemocap(root: Path) -> Path:
    """IEMOCAP_full_release/ with Session1 (2 dialogs) and Session2 (1 dialog); returns the PARENT folder.

    Usable: Session1 neu, fru, ang, xxx, exc, hap; Session2 sad, exc (8 rows).
    Planted: code zzz (unknown), one labelled utterance without audio, a Categorical/ subfolder file
    with contradicting lines, a ._ hidden label file, a transcript for Ses01F_impro01.
    """
    corpus = root / "IEMOCAP_full_release"
    for session, dialogs in _IEMOCAP_EVAL.items():
        evaluation = corpus / f"Session{session}" / "dialog" / "EmoEvaluation"
        evaluation.mkdir(parents=True)
        for dialog, utterances in dialogs.items():
            lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
            for i, (utterance, code, has_audio) in enumerate(utterances):
                lines += [
                    f"[{i + 1}.0100 - {i + 2}.2500]\t{utterance}\t{code}\t[2.5000, 3.0000, 3.5000]",
                    "C-E1:\tNeutral;\t()",
                    "A-E1:\tval 3; act 2; dom  2;\t()",
                    "",
                ]
                if has_audio:
                    write_audio(corpus / f"Session{session}" / "sentences" / "wav" / dialog / f"{utterance}.wav")
            (evaluation / f"{dialog}.txt").write_text("\n".join(lines))
        (evaluation / "Categorical").mkdir()
        (evaluation / "Categorical" / "Ses01F_impro01_e1_cat.txt").write_text(
            "[1.0100 - 2.2500]\tSes01F_impro01_F000\tang\t[1.0, 1.0, 1.0]\n"
        )
        (evaluation / "._hidden.txt").write_bytes(b"\x00\x05\x16\x07")
    transcripts = corpus / "Session1" / "dialog" / "transcriptions"
    transcripts.mkdir(parents=True)
    (transcripts / "Ses01F_impro01.txt").write_text(
        "Ses01F_impro01_F000 [001.0100-002.2500]: Excuse me.\nSes01F_impro01_M000 [002.0100-003.2500]: Do you have "
        "your forms?\n"
    )
    return root


_MELD_HEADER = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime\n"
_MELD_ROWS = {
    "train": [
        ("Oh my God!", "Rachel", "surprise", "positive", 0, 0), ("I know.", "Monica", "joy", "positive", 0, 1),
        ("Whatever.", "Chandler", "neutral", "neutral", 0, 2), ("Stop it!", "Ross", "anger", "negative", 1, 0),
        ("Broken clip.", "Joey", "anger", "negative", 125, 3),
    ],
    "dev": [
        ("Yeah.", "Joey", "sadness", "negative", 0, 0), ("Eww.", "Phoebe", "disgust", "negative", 0, 1),
        ("Missing clip.", "Ross", "fear", "negative", 110, 7),
    ],
    "test": [
        ("Hi, \u201cyou\u201d.", "Rachel", "fear", "negative", 3, 0),
        ("No.", "Monica", "neutral", "neutral", 3, 1),
    ],
}  # fmt: skip
_MELD_FOLDERS = {"train": "train_splits", "dev": "dev_splits_complete", "test": "output_repeated_splits_test"}


def make_meld(root: Path, with_mp4: bool = False) -> Path:
    """MELD.Raw/ with the three CSVs and media folders; returns MELD.Raw itself.

    Usable: train 4 (dia125_utt3 is the known-broken clip), dev 2 (dia110_utt7 has no clip), test 2.
    Media are .wav files named like the .mp4 clips, except dia0_utt0 of train which is a real .mp4 when
    `with_mp4` and ffmpeg is installed. An extra clip no CSV names sits in train_splits.
    """
    corpus = root / "MELD.Raw"
    for split, rows in _MELD_ROWS.items():
        lines = [_MELD_HEADER]
        for i, (text, speaker, emotion, sentiment, dialogue, utterance) in enumerate(rows):
            quoted = '"' + text.replace('"', '""') + '"'
            lines.append(f'{i},{quoted},{speaker},{emotion},{sentiment},{dialogue},{utterance},1,1,"00:00:01,000","00:00:02,000"\n')
            if (split, dialogue, utterance) == ("dev", 110, 7):
                continue
            clip = corpus / _MELD_FOLDERS[split] / f"dia{dialogue}_utt{utterance}"
            if not (
                with_mp4 and (split, dialogue, utterance) == ("train", 0, 0) and write_mp4(clip.with_suffix(".mp4"))
            ):
                write_audio(clip.with_suffix(".wav"))
        (corpus / f"{split}_sent_emo.csv").write_text("".join(lines), encoding="utf-8")
    write_audio(corpus / "train_splits" / "dia999_utt9.wav")
    return corpus


def _tone(path: Path, k: int, rate: int = 16000):
    t = np.arange(int(0.4 * rate)) / rate
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.3 * np.sin(2 * np.pi * 150 * (k + 1) * t)).astype(np.float32), rate)


def write_emodb(root: Path) -> Path:
    letters = {"angry": "W", "happy": "F", "neutral": "N", "sad": "T"}
    for speaker in ("03", "08", "09", "10"):
        for k, label in enumerate(LABELS):
            _tone(root / "wav" / f"{speaker}a01{letters[label]}a.flac", k)
    return root


def write_ravdess(root: Path) -> Path:
    codes = {"angry": "05", "happy": "03", "neutral": "01", "sad": "04"}
    for actor in range(1, 8):
        for k, label in enumerate(LABELS):
            _tone(
                root
                / "Audio_Speech_Actors_01-24"
                / f"Actor_{actor:02d}"
                / f"03-01-{codes[label]}-01-01-01-{actor:02d}.wav",
                k,
            )
    return root
