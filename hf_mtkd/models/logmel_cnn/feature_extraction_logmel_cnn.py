"""Log-mel filterbank features with per-utterance normalisation and a frame-level attention mask."""

from __future__ import annotations

from functools import lru_cache
from typing import Optional, Union

import numpy as np
from transformers import BatchFeature, SequenceFeatureExtractor
from transformers.utils import PaddingStrategy, TensorType


NORMALIZATIONS = ("utterance", "utterance_per_band", "none")
#: Power floor before the log: -23 nats, far under any speech in [-1, 1] float audio; digital silence stays finite.
LOG_FLOOR = 1e-10


@lru_cache(maxsize=8)
def _mel_spectrogram(sampling_rate: int, frame_length: int, frame_shift: int, num_mel_bins: int, low: float,
                     high: Optional[float]):
    # Kept outside the extractor: its attributes are saved to JSON, a torch module is not.
    import torchaudio

    return torchaudio.transforms.MelSpectrogram(
        sample_rate=sampling_rate, n_fft=frame_length, win_length=frame_length, hop_length=frame_shift,
        f_min=low, f_max=high, n_mels=num_mel_bins, power=2.0, center=False, mel_scale="htk",
    )


class LogMelFeatureExtractor(SequenceFeatureExtractor):
    r"""
    Log-mel filterbanks (`torchaudio.transforms.MelSpectrogram`: Hann window, power spectrum, HTK mel bands,
    frames inside the clip only; natural log with a floor), then normalised per utterance (see `normalization`).
    Returns `input_values` of shape (batch, frames, num_mel_bins), padded with zeros to the longest clip,
    and an `attention_mask` over frames (1 = real frame).

    Args:
        num_mel_bins (`int`, defaults to 64): mel bands per frame.
        sampling_rate (`int`, defaults to 16000): the rate the audio must come at.
        frame_length_ms / frame_shift_ms (`float`, defaults to 25 / 10): analysis window and hop.
        low_frequency / high_frequency (`float`, defaults to 20 / None): mel range in Hz (None: the Nyquist rate).
        normalization (`str`, defaults to "utterance"): "utterance": subtract the clip's mean log energy and divide
            by its standard deviation, both over all frames and bands (the recording gain goes, the spectral shape
            and its variation over time stay); "utterance_per_band": the same for each mel band on its own (also
            removes the clip's average spectrum); "none".
        return_attention_mask (`bool`, defaults to True): return the frame mask (the model pools over it).
    """

    model_input_names = ["input_values", "attention_mask"]

    def __init__(
        self,
        num_mel_bins: int = 64,
        sampling_rate: int = 16000,
        frame_length_ms: float = 25.0,
        frame_shift_ms: float = 10.0,
        low_frequency: float = 20.0,
        high_frequency: Optional[float] = None,
        normalization: str = "utterance",
        padding_value: float = 0.0,
        return_attention_mask: bool = True,
        **kwargs,
    ):
        # feature_size is SequenceFeatureExtractor's name for the same number (saved configs carry both).
        feature_size = kwargs.pop("feature_size", num_mel_bins)
        if feature_size != num_mel_bins:
            raise ValueError(f"feature_size ({feature_size}) must equal num_mel_bins ({num_mel_bins}).")
        super().__init__(feature_size=num_mel_bins, sampling_rate=sampling_rate, padding_value=padding_value,
                         return_attention_mask=return_attention_mask, **kwargs)
        if num_mel_bins < 1:
            raise ValueError(f"num_mel_bins must be >= 1, got {num_mel_bins}.")
        if frame_length_ms <= 0 or frame_shift_ms <= 0:
            raise ValueError(f"frame_length_ms and frame_shift_ms must be > 0, got {frame_length_ms}, "
                             f"{frame_shift_ms}.")
        self.num_mel_bins = num_mel_bins
        self.frame_length_ms = frame_length_ms
        self.frame_shift_ms = frame_shift_ms
        self.low_frequency = low_frequency
        self.high_frequency = high_frequency
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}.")
        self.normalization = normalization

    @classmethod
    def for_config(cls, config, **kwargs) -> "LogMelFeatureExtractor":
        """The extractor a freshly configured model needs (its num_mel_bins)."""
        return cls(num_mel_bins=config.num_mel_bins, **kwargs)

    @property
    def frame_length(self) -> int:
        return int(round(self.frame_length_ms * self.sampling_rate / 1000))

    @property
    def frame_shift(self) -> int:
        return int(round(self.frame_shift_ms * self.sampling_rate / 1000))

    def num_frames(self, num_samples: int) -> int:
        """Frames of a clip of `num_samples` (a clip shorter than one frame is zero-padded to one)."""
        return 1 + (max(num_samples, self.frame_length) - self.frame_length) // self.frame_shift

    def log_mel(self, waveform: np.ndarray) -> np.ndarray:
        """(frames, num_mel_bins) float32 log-mel energies of one mono clip, normalised as `normalization` says."""
        import torch

        waveform = np.asarray(waveform, dtype=np.float32)
        if waveform.ndim != 1:
            raise ValueError(f"{type(self).__name__} takes mono audio (1-D arrays), got shape {waveform.shape}.")
        if waveform.size < self.frame_length:
            waveform = np.pad(waveform, (0, self.frame_length - waveform.size))
        transform = _mel_spectrogram(
            int(self.sampling_rate),
            self.frame_length,
            self.frame_shift,
            int(self.num_mel_bins),
            float(self.low_frequency),
            self.high_frequency,
        )
        with torch.no_grad():
            mel = transform(torch.tensor(waveform))  # (num_mel_bins, frames); a copy: dataset arrays are read-only
            fbank = torch.log(mel.clamp(min=LOG_FLOOR)).T.numpy()
        if self.normalization != "none":
            axis = 0 if self.normalization == "utterance_per_band" else None
            fbank = (fbank - fbank.mean(axis=axis, keepdims=True)) / np.sqrt(
                fbank.var(axis=axis, keepdims=True) + 1e-5
            )
        return fbank.astype(np.float32)

    def __call__(
        self,
        raw_speech: Union[np.ndarray, list[float], list[np.ndarray], list[list[float]]],
        sampling_rate: Optional[int] = None,
        padding: Union[bool, str, PaddingStrategy] = "longest",
        max_length: Optional[int] = None,
        truncation: bool = False,
        pad_to_multiple_of: Optional[int] = None,
        return_attention_mask: Optional[bool] = None,
        return_tensors: Optional[Union[str, TensorType]] = None,
        **kwargs,
    ) -> BatchFeature:
        """Features of one clip (1-D) or a batch (a list of 1-D arrays, or a 2-D array of equal-length clips).
        `max_length` and `truncation` count frames."""
        if sampling_rate is not None and sampling_rate != self.sampling_rate:
            raise ValueError(
                f"{type(self).__name__} expects audio at {self.sampling_rate} Hz, got {sampling_rate} Hz; resample "
                f"first."
            )
        is_batched = (isinstance(raw_speech, np.ndarray) and raw_speech.ndim > 1) or (
            isinstance(raw_speech, (list, tuple)) and len(raw_speech) > 0
            and isinstance(raw_speech[0], (np.ndarray, list, tuple))
        )
        if isinstance(raw_speech, np.ndarray) and raw_speech.ndim > 2:
            raise ValueError(f"{type(self).__name__} takes mono audio; got an array of shape {raw_speech.shape}.")
        clips = list(raw_speech) if is_batched else [raw_speech]
        features = BatchFeature({"input_values": [self.log_mel(np.asarray(clip)) for clip in clips]})
        padded = self.pad(
            features,
            padding=padding,
            max_length=max_length,
            truncation=truncation,
            pad_to_multiple_of=pad_to_multiple_of,
            return_attention_mask=self.return_attention_mask
            if return_attention_mask is None
            else return_attention_mask,
        )
        padded["input_values"] = [np.asarray(values, dtype=np.float32) for values in padded["input_values"]]
        if return_tensors is not None:
            padded = padded.convert_to_tensors(return_tensors)
        return padded


__all__ = ["LogMelFeatureExtractor"]
