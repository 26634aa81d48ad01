"""Emotion predictions for audio files of any length, rate and channel count.

Each file is decoded to mono at the model's rate (`hf_mtkd.data.audio.decode_audio`), cut into
equal windows of `chunk_seconds` (the last window ends at the end of the file, overlapping the one
before), and the class probabilities of the windows are averaged. A clip no longer than one
window is one window: its scores equal `pipeline("audio-classification")`'s.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import numpy as np

from ..arguments import DataArguments
from ..data.audio import AUDIO_EXTENSIONS, AudioDecodeError, as_sampling_rate, decode_audio, has_audio_extension
from ..utils.atomic import write_text_atomic

logger = logging.getLogger(__name__)

#: Default window: the clip length students are trained on (DataArguments.max_duration_seconds).
DEFAULT_CHUNK_SECONDS = DataArguments.__dataclass_fields__["max_duration_seconds"].default
#: Clips shorter than this are zero-padded to it (the convolutional front end needs a few frames).
MIN_SECONDS = 0.1
OUTPUT_FORMATS = (".csv", ".json")
ON_ERROR = ("fail", "skip")


@dataclass
class Prediction:
    """One file's result: the top emotion, every emotion's probability, how much audio and how many windows."""

    path: str
    label: Optional[str]
    score: Optional[float]
    scores: dict[str, float] = field(default_factory=dict)
    duration_seconds: Optional[float] = None
    num_chunks: int = 0
    error: Optional[str] = None


class EmotionPredictor:
    """A saved audio-classification model (a path or Hub id) with its feature extractor, ready to score audio."""

    def __init__(self, model_path: str | os.PathLike, *, chunk_seconds: Optional[float] = DEFAULT_CHUNK_SECONDS,
                 batch_size: int = 8, device: Optional[str] = None):
        import torch
        from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

        if chunk_seconds is not None and chunk_seconds <= 0:
            raise ValueError(f"chunk_seconds must be > 0 (or None for whole files), got {chunk_seconds}.")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        model_path = str(model_path)  # hf_mtkd's own architectures are registered by `import hf_mtkd`
        self.model = AutoModelForAudioClassification.from_pretrained(model_path).eval()
        self.feature_extractor = AutoFeatureExtractor.from_pretrained(model_path)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.to(self.device)
        self.sampling_rate = int(self.feature_extractor.sampling_rate)
        id2label = self.model.config.id2label
        self.label_names = [id2label[i] for i in range(len(id2label))]
        self.chunk_seconds = chunk_seconds
        self.batch_size = batch_size

    def chunks(self, waveform: np.ndarray) -> list[np.ndarray]:
        """Equal windows covering the clip; the last one is aligned to the end of the clip."""
        minimum = int(MIN_SECONDS * self.sampling_rate)
        if waveform.size < minimum:
            waveform = np.pad(waveform, (0, minimum - waveform.size))
        if self.chunk_seconds is None:
            return [waveform]
        size = max(int(round(self.chunk_seconds * self.sampling_rate)), minimum)
        if waveform.size <= size:
            return [waveform]
        starts = list(range(0, waveform.size - size + 1, size))
        if starts[-1] + size < waveform.size:
            starts.append(waveform.size - size)
        return [waveform[s : s + size] for s in starts]

    def probabilities(self, waveform: np.ndarray) -> tuple[np.ndarray, int]:
        """Mean class probabilities over the windows of a mono waveform at `self.sampling_rate`."""
        import torch

        windows = self.chunks(np.asarray(waveform, dtype=np.float32))
        input_name = self.feature_extractor.model_input_names[0]
        probs = []
        with torch.inference_mode():
            for i in range(0, len(windows), self.batch_size):
                batch = windows[i : i + self.batch_size]  # equal lengths: no padding, no attention mask needed
                features = self.feature_extractor(batch, sampling_rate=self.sampling_rate, return_tensors="pt")
                inputs = {k: v.to(self.device) for k, v in features.items() if k in (input_name, "attention_mask")}
                logits = self.model(**inputs).logits.float()
                probs.append(logits.softmax(dim=-1).cpu().numpy())
        return np.concatenate(probs).mean(axis=0), len(windows)

    def predict(self, audio: Union[str, os.PathLike, np.ndarray], sampling_rate: Optional[int] = None) -> Prediction:
        """Scores for one clip: a file path, or an array (mono, or 2-D with channels) at `sampling_rate`."""
        if isinstance(audio, (str, os.PathLike)):
            name = str(audio)
            waveform = decode_audio(name, self.sampling_rate)
        else:
            if sampling_rate is None:
                raise ValueError("An array needs its sampling_rate.")
            sampling_rate = as_sampling_rate(sampling_rate, "predict(sampling_rate=...)")
            name = "<array>"
            waveform = decode_audio({"array": audio, "sampling_rate": sampling_rate}, self.sampling_rate)
        mean, count = self.probabilities(waveform)
        top = int(np.argmax(mean))
        return Prediction(
            path=name,
            label=self.label_names[top],
            score=float(mean[top]),
            scores={label: float(p) for label, p in zip(self.label_names, mean)},
            duration_seconds=round(waveform.size / self.sampling_rate, 3),
            num_chunks=count,
        )

    def predict_files(self, inputs: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]], *,
                      output: Optional[str | os.PathLike] = None, on_error: str = "fail",
                      progress: bool = True) -> list[Prediction]:
        """Predict every audio file given or found (recursively) in the folders given; write CSV/JSON if `output`."""
        from tqdm.auto import tqdm

        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}.")
        if output is not None:
            output_format(output)  # a bad extension fails before any work
        files = collect_audio_files(inputs)
        results = []
        for path in tqdm(files, desc="predict", unit="file", disable=not progress):
            try:
                results.append(self.predict(path))
            except AudioDecodeError as err:
                if on_error == "fail":
                    raise
                logger.warning("Skipping %s", err)
                results.append(Prediction(path=str(path), label=None, score=None, error=str(err)))
        if output is not None:
            write_predictions(results, output, self.label_names)
        return results


def predict_files(model_path: str | os.PathLike, inputs, *, output: Optional[str | os.PathLike] = None,
                  chunk_seconds: Optional[float] = DEFAULT_CHUNK_SECONDS, batch_size: int = 8,
                  device: Optional[str] = None, on_error: str = "fail", progress: bool = True) -> list[Prediction]:
    """Load the model at `model_path` and predict files or folders; see `EmotionPredictor.predict_files`."""
    if output is not None:
        output_format(output)
    collect_audio_files(inputs)  # missing inputs fail before the model loads
    predictor = EmotionPredictor(model_path, chunk_seconds=chunk_seconds, batch_size=batch_size, device=device)
    return predictor.predict_files(inputs, output=output, on_error=on_error, progress=progress)


def collect_audio_files(inputs) -> list[Path]:
    """Files as given, and audio files (by extension) found recursively in folders, sorted per folder."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and has_audio_extension(p.name))
            if not found:
                raise FileNotFoundError(f"No audio files ({', '.join(sorted(AUDIO_EXTENSIONS))}) in folder {str(path)!r}.")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{str(path)!r} is neither a file nor a folder.")
    if not files:
        raise ValueError("No input files given.")
    return files


def output_format(path: str | os.PathLike) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise ValueError(f"Output {str(path)!r}: the extension must be one of {OUTPUT_FORMATS} (it picks the format).")
    return suffix


def write_predictions(predictions: Iterable[Prediction], path: str | os.PathLike, label_names: Sequence[str]) -> Path:
    """CSV (one `score_<label>` column per emotion) or JSON (a list of objects), by extension, written atomically."""
    path = Path(path)
    predictions = list(predictions)
    if output_format(path) == ".json":
        text = json.dumps([asdict(p) for p in predictions], indent=2, ensure_ascii=False) + "\n"
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["path", "label", "score", "duration_seconds", "num_chunks", "error",
                         *(f"score_{label}" for label in label_names)])
        for p in predictions:
            writer.writerow([p.path, p.label or "", "" if p.score is None else f"{p.score:.6f}",
                             "" if p.duration_seconds is None else p.duration_seconds, p.num_chunks, p.error or "",
                             *("" if label not in p.scores else f"{p.scores[label]:.6f}" for label in label_names)])
        text = buffer.getvalue()
    return write_text_atomic(path, text, newline="")

