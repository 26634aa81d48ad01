"""RAVDESS, the Ryerson Audio-Visual Database of Emotional Speech and Song (English).

Layout (Zenodo record 1188976): ``Audio_Speech_Actors_01-24.zip`` unpacks to ``Actor_01`` ..
``Actor_24`` folders of ``MM-VC-EE-II-SS-RR-AA.wav``; the root may be that folder or any parent (the
reader searches the whole root), and any audio extension is accepted.

Label source: the corpus' README (Livingstone & Russo, PLoS ONE 2018). Seven two-digit fields:
modality (01 full-AV, 02 video-only, 03 audio-only), vocal channel (01 speech, 02 song), emotion
(01 neutral, 02 calm, 03 happy, 04 sad, 05 angry, 06 fearful -> fear, 07 disgust, 08 surprised ->
surprise), intensity (01 normal, 02 strong), statement (01, 02), repetition (01, 02), actor (01-24;
odd male, even female). The speech set has 1,440 files: neutral 96, every other emotion 192.
Fold: the actor (no official split).

Options:
    calm_as_neutral: map calm to neutral (a common 4-class setup); default False (calm stays calm).
    vocal_channels: which of "speech" and "song" to keep; default ("speech",). Others are counted as skipped.
    include_video: also read full audio-visual files (modality 01, e.g. .mp4, whose audio track torchcodec
        decodes); default False, because they duplicate the audio-only recordings. Video-only files
        (modality 02) have no audio and are always skipped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from .base import CorpusReader, CorpusReport, Utterance, iter_named_files
from .registry import register_corpus

_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
_CHANNELS = {"01": "speech", "02": "song"}
_INTENSITY = {"01": "normal", "02": "strong"}


@register_corpus
class RavdessReader(CorpusReader):
    name = "ravdess"
    language = "en"
    layout = (
        "<root>/[Audio_Speech_Actors_01-24/]Actor_NN/MM-VC-EE-II-SS-RR-AA.<ext> "
        "(modality, vocal channel, emotion 01-08, intensity, statement, repetition, actor), e.g. "
        "Actor_01/03-01-05-01-01-01-01.wav"
    )
    label_names = {
        "01": "neutral", "02": "calm", "03": "happy", "04": "sad",
        "05": "angry", "06": "fear", "07": "disgust", "08": "surprise",
    }  # fmt: skip
    extra_columns = ("gender", "intensity", "vocal_channel", "statement", "repetition")

    def __init__(
        self,
        *,
        calm_as_neutral: bool = False,
        vocal_channels: Sequence[str] = ("speech",),
        include_video: bool = False,
    ):
        if isinstance(vocal_channels, str):
            vocal_channels = (vocal_channels,)
        unknown = set(vocal_channels) - set(_CHANNELS.values())
        if unknown or not vocal_channels:
            raise ValueError(f"vocal_channels must name 'speech' and/or 'song', got {list(vocal_channels)}.")
        self.calm_as_neutral = calm_as_neutral
        self.vocal_channels = tuple(vocal_channels)
        self.modalities = {"03", "01"} if include_video else {"03"}

    def option_label_map(self) -> dict[str, str]:
        return {"calm": "neutral"} if self.calm_as_neutral else {}

    def scan(self, root: Path, report: CorpusReport):
        for path, match in iter_named_files(root, report, _NAME):
            modality, channel, emotion, intensity, statement, repetition, actor = match.groups()
            if modality not in self.modalities:
                reason = {
                    "01": "full audio-visual file (modality 01; include_video=True reads it)",
                    "02": "video-only file (modality 02, no audio)",
                }.get(modality, f"unknown modality code {modality}")
                report.add_skipped(reason, str(path))
                continue
            if _CHANNELS.get(channel) not in self.vocal_channels:
                report.add_skipped(f"vocal channel {channel} not in "
                                   f"vocal_channels={list(self.vocal_channels)}", str(path))
                continue
            speaker = f"ravdess_{actor}"
            yield Utterance(
                path=str(path),
                code=emotion,
                speaker=speaker,
                fold=speaker,
                extra={
                    "gender": "male" if int(actor) % 2 else "female",
                    "intensity": _INTENSITY.get(intensity, intensity),
                    "vocal_channel": _CHANNELS[channel],
                    "statement": statement,
                    "repetition": repetition,
                },
            )
