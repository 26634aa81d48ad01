"""Predictions of an audio + text model for audio files with their transcripts (for `hf-mtkd predict`).

Transcripts come from a CSV (a column of file paths, relative to the CSV's folder like an audiofolder's
metadata.csv, and a column of text) or from sidecar files: `clip.txt` beside `clip.wav`. A file without
a transcript is an error naming it (or, with on_error="skip", a row with the error). Long files are cut
into windows as for audio-only models (`hf_mtkd.inference.predict`); every window is paired with the
whole transcript and the class probabilities are averaged.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from ..data.audio import AudioDecodeError, decode_audio
from ..inference.predict import (
    MODEL_WINDOW,
    EmotionPredictor,
    Prediction,
    check_chunk_and_batch,
    check_model_source,
    check_on_error_and_output,
    collect_audio_files,
    predict_each,
    resolve_chunk_seconds,
    write_predictions,
)
from ..windowing import WindowRule


PATH_COLUMNS = ("file_name", "path")


class TranscriptError(ValueError):
    """A file without a transcript, or a transcript table that cannot be read; names the file."""


def read_transcript_table(csv_path: Union[str, os.PathLike], text_column: str = "text",
                          path_column: Optional[str] = None) -> dict[Path, str]:
    """{resolved audio path: transcript} from a CSV with a path column (file_name or path) and `text_column`."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise TranscriptError(f"Transcript table {str(csv_path)!r} does not exist.")
    with open(csv_path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        path_column = path_column or next((c for c in PATH_COLUMNS if c in header), None)
        if path_column is None or path_column not in header:
            raise TranscriptError(f"{csv_path}: no path column ({' or '.join(PATH_COLUMNS)}); its columns are "
                                  f"{header}.")
        if text_column not in header:
            raise TranscriptError(f"{csv_path}: no transcript column {text_column!r}; its columns are {header}.")
        table = {}
        for row in reader:
            path = Path(row[path_column])
            path = path if path.is_absolute() else csv_path.parent / path
            table[path.resolve()] = row[text_column]
    return table


def transcript_for(audio_path: Path, table: Optional[dict[Path, str]], sidecar_suffix: str = ".txt") -> str:
    """The transcript of one file: from the table, else from its sidecar file; an error names the file."""
    resolved = audio_path.resolve()
    if table is not None:
        text = table.get(resolved)
        where = "the transcript table"
    else:
        sidecar = audio_path.with_suffix(sidecar_suffix)
        text = sidecar.read_text(encoding="utf-8").strip() if sidecar.is_file() else None
        where = f"a sidecar file {sidecar.name!r}"
    if text is None or not str(text).strip():
        raise TranscriptError(f"{audio_path}: no transcript in {where}.")
    return str(text).strip()


class AudioTextPredictor:
    """A saved audio_text model (path or Hub id) with its processor, scoring (clip, transcript) pairs."""

    chunks = EmotionPredictor.chunks  # the same windows as audio-only predictions

    def __init__(self, model_path: Union[str, os.PathLike], *, chunk_seconds: Union[float, str, None] = MODEL_WINDOW,
                 batch_size: int = 8, device: Optional[str] = None):
        import torch
        from transformers import AutoProcessor

        from ..models.audio_text.modeling_audio_text import AudioTextForSequenceClassification

        check_chunk_and_batch(chunk_seconds, batch_size)
        model_path = check_model_source(model_path, "model_path")
        self.model = AudioTextForSequenceClassification.from_pretrained(model_path).eval()
        self.processor = AutoProcessor.from_pretrained(model_path)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.to(self.device)
        self.sampling_rate = self.processor.sampling_rate
        self.chunk_seconds = resolve_chunk_seconds(chunk_seconds, self.model.config)  # the audio-only rule
        self.rule = WindowRule.from_seconds(self.chunk_seconds, self.sampling_rate)
        self.batch_size = batch_size
        id2label = self.model.config.id2label
        self.label_names = [id2label[i] for i in range(len(id2label))]

    @property
    def needs_text(self) -> bool:
        return self.model.config.uses_text

    def probabilities(self, waveform: Optional[np.ndarray], text: Optional[str]) -> tuple[np.ndarray, int]:
        import torch

        config = self.model.config
        windows = self.chunks(np.asarray(waveform, dtype=np.float32)) if config.uses_audio else [None]
        probs = []
        with torch.inference_mode():
            for i in range(0, len(windows), self.batch_size):
                batch = windows[i: i + self.batch_size]
                inputs = self.processor(audio=batch if config.uses_audio else None,
                                        text=[text] * len(batch) if config.uses_text else None)
                logits = self.model(**{k: v.to(self.device) for k, v in inputs.items()}).logits.float()
                probs.append(logits.softmax(-1).cpu().numpy())
        return np.concatenate(probs).mean(axis=0), len(windows)

    def predict(self, audio_path: Union[str, os.PathLike], text: Optional[str]) -> Prediction:
        waveform = decode_audio(str(audio_path), self.sampling_rate) if self.model.config.uses_audio else None
        mean, count = self.probabilities(waveform, text)
        top = int(np.argmax(mean))
        return Prediction(
            path=str(audio_path), label=self.label_names[top], score=float(mean[top]),
            scores={label: float(p) for label, p in zip(self.label_names, mean)},
            duration_seconds=None if waveform is None else round(waveform.size / self.sampling_rate, 3),
            num_chunks=count,
        )


def predict_audio_text(
    model_path: Union[str, os.PathLike],
    inputs: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]],
    *,
    transcripts: Optional[Union[str, os.PathLike]] = None,
    text_column: str = "text",
    path_column: Optional[str] = None,
    sidecar_suffix: str = ".txt",
    output: Optional[Union[str, os.PathLike]] = None,
    chunk_seconds: Union[float, str, None] = MODEL_WINDOW,
    batch_size: int = 8,
    device: Optional[str] = None,
    on_error: str = "fail",
    progress: bool = True,
) -> list[Prediction]:
    """Predict audio files (or folders, searched recursively) with their transcripts; write CSV/JSON if `output`.

    `transcripts`: a CSV with a path column (`path_column`, default file_name or path) and `text_column`;
    without it, each audio file's sidecar `<stem><sidecar_suffix>` holds its transcript.
    """
    check_on_error_and_output(on_error, output)
    files = collect_audio_files(inputs)
    table = read_transcript_table(transcripts, text_column, path_column) if transcripts is not None else None
    predictor = AudioTextPredictor(model_path, chunk_seconds=chunk_seconds, batch_size=batch_size, device=device)

    def predict_one(path):
        text = transcript_for(Path(path), table, sidecar_suffix) if predictor.needs_text else None
        return predictor.predict(path, text)

    results = predict_each(files, predict_one, on_error=on_error, progress=progress,
                           errors=(AudioDecodeError, TranscriptError))
    if output is not None:
        write_predictions(results, output, predictor.label_names)
    return results


__all__ = ["AudioTextPredictor", "TranscriptError", "predict_audio_text", "read_transcript_table", "transcript_for"]
