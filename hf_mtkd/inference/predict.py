"""Emotion predictions for audio files of any length, rate and channel count.

Each file is decoded to mono at the model's rate (`hf_mtkd.data.audio.decode_audio`) and scored by
the window rule evaluation uses (`hf_mtkd.windowing.WindowRule`): windows of the length the model
was trained on (`train_window_seconds` in its config), the last one ending at the end of the file
(overlapping the one before), logits averaged over the windows, then softmax. A clip no longer than
one window is one window: its scores equal `pipeline("audio-classification")`'s.
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

from ..data.audio import AUDIO_EXTENSIONS, AudioDecodeError, as_sampling_rate, decode_audio, has_audio_extension
from ..data.collator import feature_extractor_inputs
from ..utils.atomic import write_text_atomic
from ..windowing import WindowRule, window_seconds_from_config

logger = logging.getLogger(__name__)

#: `chunk_seconds` value that means "the window the model was trained on" (its config's train_window_seconds).
MODEL_WINDOW = "model"
#: Window for models whose config records none (e.g. trained elsewhere).
FALLBACK_CHUNK_SECONDS = 6.0
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


def check_chunk_and_batch(chunk_seconds: Union[float, str, None], batch_size: int) -> None:
    """`chunk_seconds`: a number > 0, None (whole files) or MODEL_WINDOW; `batch_size` >= 1."""
    if isinstance(chunk_seconds, str) and chunk_seconds != MODEL_WINDOW:
        raise ValueError(f"chunk_seconds must be a number, None or {MODEL_WINDOW!r}, got {chunk_seconds!r}.")
    if not isinstance(chunk_seconds, str) and chunk_seconds is not None and chunk_seconds <= 0:
        raise ValueError(f"chunk_seconds must be > 0 (or None for whole files), got {chunk_seconds}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")


def _looks_like_a_path(model: str) -> bool:
    """True when `model` cannot be a Hub id (`name` or `org/name`), or its parent folder is here (`out/nope` beside
    a local `out/`): from_pretrained would take such a value for a Hub id and report a failed download."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if os.path.isabs(model) or model.startswith(("~", ".")) or "\\" in model:
        return True
    parent = os.path.dirname(model)
    if parent and os.path.isdir(parent):
        return True
    try:
        validate_repo_id(model)
    except HFValidationError:
        return True
    return False


def check_model_source(model: str | os.PathLike, name: str = "model") -> str:
    """`model` (a saved model's folder or a Hub id) as from_pretrained should get it, checked first: a path that is no
    folder is a FileNotFoundError (not a Hub download that failed), and every safetensors file of a local folder
    must open, so a truncated copy is an error naming the file (safetensors' own names none). `name`: the argument,
    as the error shows it. Hub ids are left to from_pretrained."""
    model = os.fspath(model)
    if os.path.isdir(model):
        check_weight_files(model)
    elif os.path.exists(model):
        raise NotADirectoryError(f"{name} {model!r} is a file: give the folder of a saved model (a run's output_dir).")
    elif _looks_like_a_path(model):
        where = "" if os.path.isabs(model) else f" (relative to {os.getcwd()})"
        raise FileNotFoundError(
            f"{name} {model!r}: no such folder{where}. Give the folder of a saved model (a run's output_dir) or a "
            "Hub id (org/name)."
        )
    return model


def check_weight_files(folder: str | os.PathLike) -> None:
    """Open the header of every safetensors file in `folder`; a damaged one is an OSError naming its path."""
    from safetensors import SafetensorError, safe_open

    for entry in sorted(os.listdir(folder)):
        if entry.endswith(".safetensors"):
            path = os.path.join(folder, entry)
            try:
                with safe_open(path, framework="pt"):
                    pass
            except (SafetensorError, OSError) as err:
                raise OSError(f"{path} is damaged ({err}): copy or save the model again.") from err


def resolve_chunk_seconds(chunk_seconds: Union[float, str, None], config) -> Optional[float]:
    """MODEL_WINDOW -> the training window recorded in the model config, else FALLBACK_CHUNK_SECONDS."""
    if chunk_seconds == MODEL_WINDOW:
        return window_seconds_from_config(config) or FALLBACK_CHUNK_SECONDS
    return chunk_seconds


class EmotionPredictor:
    """A saved audio-classification model (a path or Hub id) with its feature extractor, ready to score audio.

    `chunk_seconds`: "model" (default) uses the window recorded in the model's config, or
    FALLBACK_CHUNK_SECONDS when it has none; a number overrides it; None scores whole files in one pass."""

    def __init__(self, model_path: str | os.PathLike, *, chunk_seconds: Union[float, str, None] = MODEL_WINDOW,
                 batch_size: int = 8, device: Optional[str] = None):
        import torch
        from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

        check_chunk_and_batch(chunk_seconds, batch_size)
        model_path = check_model_source(model_path, "model_path")  # hf_mtkd's architectures: registered on import
        self.model = AutoModelForAudioClassification.from_pretrained(model_path).eval()
        self.feature_extractor = AutoFeatureExtractor.from_pretrained(model_path)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.to(self.device)
        self.sampling_rate = int(self.feature_extractor.sampling_rate)
        id2label = self.model.config.id2label
        self.label_names = [id2label[i] for i in range(len(id2label))]
        self.chunk_seconds = resolve_chunk_seconds(chunk_seconds, self.model.config)
        self.rule = WindowRule.from_seconds(self.chunk_seconds, self.sampling_rate)
        self.batch_size = batch_size

    def chunks(self, waveform: np.ndarray) -> list[np.ndarray]:
        """The windows of a clip (the rule evaluation uses)."""
        return self.rule.windows(waveform)

    def logits(self, waveform: np.ndarray) -> tuple[np.ndarray, int]:
        """Mean logits over the windows of a mono waveform at `self.sampling_rate`, and the number of windows."""
        import torch

        windows = self.chunks(np.asarray(waveform, dtype=np.float32))
        logits = []
        with torch.inference_mode():
            for i in range(0, len(windows), self.batch_size):
                # Inputs made as the training collator makes them (padding, attention mask when the extractor has one).
                inputs = feature_extractor_inputs(
                    self.feature_extractor, windows[i : i + self.batch_size], self.sampling_rate
                )
                logits.append(
                    self.model(**{k: v.to(self.device) for k, v in inputs.items()}).logits.float().cpu().numpy()
                )
        return np.concatenate(logits).mean(axis=0), len(windows)

    def probabilities(self, waveform: np.ndarray) -> tuple[np.ndarray, int]:
        """Softmax of the mean window logits, and the number of windows."""
        mean, count = self.logits(waveform)
        exp = np.exp(mean - mean.max())
        return exp / exp.sum(), count

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
        check_on_error_and_output(on_error, output)
        results = predict_each(collect_audio_files(inputs), self.predict, on_error=on_error, progress=progress)
        if output is not None:
            write_predictions(results, output, self.label_names)
        return results


def check_on_error_and_output(on_error: str, output: Optional[str | os.PathLike]) -> None:
    """A bad `on_error` or output extension fails before any work."""
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}.")
    if output is not None:
        output_format(output)


def predict_each(files: Sequence[Path], predict_one, *, on_error: str = "fail", progress: bool = True,
                 errors: tuple[type[Exception], ...] = (AudioDecodeError,)) -> list[Prediction]:
    """`predict_one(path)` for every file; a file raising one of `errors` stops the run (`on_error: fail`) or is
    recorded as an error row and skipped (`skip`)."""
    from tqdm.auto import tqdm

    results = []
    for path in tqdm(files, desc="predict", unit="file", disable=not progress):
        try:
            results.append(predict_one(path))
        except errors as err:
            if on_error == "fail":
                raise
            logger.warning("Skipping %s", err)
            results.append(Prediction(path=str(path), label=None, score=None, error=str(err)))
    return results


def predict_files(model_path: str | os.PathLike, inputs, *, output: Optional[str | os.PathLike] = None,
                  chunk_seconds: Union[float, str, None] = MODEL_WINDOW, batch_size: int = 8,
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
                raise FileNotFoundError(f"No audio files ({', '.join(sorted(AUDIO_EXTENSIONS))}) in folder "
                                        f"{str(path)!r}.")
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

