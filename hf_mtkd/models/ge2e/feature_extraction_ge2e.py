"""The GE2E encoder's front end: the mel frames Resemblyzer feeds its LSTM, cut into its partial windows.

What the wheel does (audio.py, hparams.py, voice_encoder.py of resemblyzer 0.1.4), reproduced here:
- 16 kHz mono; the volume raised to -30 dBFS when the clip is quieter (never lowered): `normalize_volume`.
  Resemblyzer's `preprocess_wav` also drops long silences with webrtcvad's voice activity detector; that C
  detector is not reproduced (a saved model must run without it), so the embeddings equal
  `VoiceEncoder.embed_utterance` of a volume-normalised clip whose silences were left in.
- `librosa.feature.melspectrogram` with its defaults: a 400-sample (25 ms) periodic Hann window every 160 samples
  (10 ms), frames centred with zero padding (librosa >= 0.10's pad_mode "constant"), power spectrum, 40 Slaney-scale
  mel bands with Slaney area normalisation from 0 Hz to Nyquist. No log and no normalisation: the LSTM was trained
  on the power mel. torchaudio's MelSpectrogram computes the same with mel_scale="slaney", norm="slaney".
- Partial windows of 160 frames (1.6 s), `partial_rate` (1.3) per second; the last window is kept if at least
  `min_coverage` (0.75) of it lies inside the clip (always at least one window), the clip zero-padded to its end.

`input_values` is (batch, windows, 160, num_mel_bins), padded with zero windows to the clip with the most, and
`attention_mask` (batch, windows) marks the real ones.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Optional, Union

import numpy as np
from transformers import BatchFeature, SequenceFeatureExtractor
from transformers.utils import TensorType

#: Full scale of 16-bit PCM, the reference of the dBFS level (as the wheel measures it).
INT16_MAX = 2**15 - 1


@lru_cache(maxsize=4)
def _mel_spectrogram(sampling_rate: int, n_fft: int, hop_length: int, num_mel_bins: int, pad_mode: str):
    # Kept outside the extractor: its attributes are saved to JSON, a torch module is not.
    import torchaudio

    return torchaudio.transforms.MelSpectrogram(
        sample_rate=sampling_rate, n_fft=n_fft, win_length=n_fft, hop_length=hop_length, f_min=0.0, f_max=None,
        n_mels=num_mel_bins, power=2.0, center=True, pad_mode=pad_mode, norm="slaney", mel_scale="slaney",
    )


def normalize_volume(waveform: np.ndarray, target_dbfs: float) -> np.ndarray:
    """Scale a clip quieter than `target_dbfs` (RMS level re 16-bit full scale) up to it; louder clips and digital
    silence are left as they are. Hand-written: torchaudio's `Vol` applies a given gain, it does not aim at a level."""
    waveform = np.asarray(waveform, dtype=np.float64)
    rms = np.sqrt(np.mean((waveform * INT16_MAX) ** 2)) if waveform.size else 0.0
    if rms == 0.0:
        return waveform
    change = target_dbfs - 20.0 * np.log10(rms / INT16_MAX)
    return waveform if change < 0 else waveform * 10.0 ** (change / 20.0)


class GE2EFeatureExtractor(SequenceFeatureExtractor):
    r"""
    Args:
        num_mel_bins (`int`, defaults to 40): mel bands per frame.
        sampling_rate (`int`, defaults to 16000): the rate the audio must come at.
        window_ms / hop_ms (`float`, defaults to 25 / 10): analysis window and hop.
        partial_frames (`int`, defaults to 160): frames per partial window.
        partial_rate (`float`, defaults to 1.3): partial windows per second.
        min_coverage (`float`, defaults to 0.75): share of the last window that must lie inside the clip.
        target_dbfs (`float` or None, defaults to -30): level quieter clips are raised to; None: no normalisation.
        pad_mode (`str`, defaults to "constant"): padding of the centred edge frames ("constant" since librosa 0.10,
            "reflect" before).
        return_attention_mask (`bool`, defaults to True): return the window mask (the model pools over it).
    """

    model_input_names = ["input_values", "attention_mask"]

    def __init__(
        self,
        num_mel_bins: int = 40,
        sampling_rate: int = 16000,
        window_ms: float = 25.0,
        hop_ms: float = 10.0,
        partial_frames: int = 160,
        partial_rate: float = 1.3,
        min_coverage: float = 0.75,
        target_dbfs: Optional[float] = -30.0,
        pad_mode: str = "constant",
        padding_value: float = 0.0,
        return_attention_mask: bool = True,
        **kwargs,
    ):
        kwargs.pop("feature_size", None)
        super().__init__(feature_size=num_mel_bins, sampling_rate=sampling_rate, padding_value=padding_value,
                         return_attention_mask=return_attention_mask, **kwargs)
        if num_mel_bins < 1 or partial_frames < 1:
            raise ValueError(f"num_mel_bins and partial_frames must be >= 1, got {num_mel_bins}, {partial_frames}.")
        if window_ms <= 0 or hop_ms <= 0:
            raise ValueError(f"window_ms and hop_ms must be > 0, got {window_ms}, {hop_ms}.")
        if not 0.0 < min_coverage <= 1.0:
            raise ValueError(f"min_coverage must be in (0, 1], got {min_coverage}.")
        if pad_mode not in ("constant", "reflect"):
            raise ValueError(f"pad_mode must be 'constant' or 'reflect', got {pad_mode!r}.")
        self.num_mel_bins = num_mel_bins
        self.window_ms = window_ms
        self.hop_ms = hop_ms
        self.partial_frames = partial_frames
        self.partial_rate = partial_rate
        self.min_coverage = min_coverage
        self.target_dbfs = target_dbfs
        self.pad_mode = pad_mode
        step = self.frame_step
        if not 0 < step <= partial_frames:
            raise ValueError(
                f"partial_rate {partial_rate} puts {step} frames between windows; it must be in 1..{partial_frames}.")

    @classmethod
    def for_config(cls, config, **kwargs) -> "GE2EFeatureExtractor":
        """The extractor a freshly configured model needs (its num_mel_bins)."""
        return cls(num_mel_bins=config.num_mel_bins, **kwargs)

    @property
    def n_fft(self) -> int:
        return int(self.sampling_rate * self.window_ms / 1000)  # int(), as the wheel: 400 at 16 kHz

    @property
    def hop_length(self) -> int:
        return int(self.sampling_rate * self.hop_ms / 1000)

    @property
    def frame_step(self) -> int:
        """Frames between the starts of two partial windows (77 at 1.3 per second)."""
        return int(np.round(self.sampling_rate / self.partial_rate / self.hop_length))

    def partial_starts(self, num_samples: int) -> list[int]:
        """First frame of each partial window of a clip of `num_samples` samples."""
        hop, size = self.hop_length, self.partial_frames
        num_frames = int(np.ceil((num_samples + 1) / hop))
        starts = list(range(0, max(1, num_frames - size + self.frame_step + 1), self.frame_step))
        coverage = (num_samples - starts[-1] * hop) / (size * hop)
        if coverage < self.min_coverage and len(starts) > 1:
            starts.pop()
        return starts

    def partials(self, waveform: np.ndarray) -> np.ndarray:
        """(windows, partial_frames, num_mel_bins) float32 mel windows of one mono clip."""
        import torch

        waveform = np.asarray(waveform)
        if waveform.ndim != 1:
            raise ValueError(f"{type(self).__name__} takes mono audio (1-D arrays), got shape {waveform.shape}.")
        starts = self.partial_starts(waveform.size)
        if self.target_dbfs is not None:
            waveform = normalize_volume(waveform, self.target_dbfs)
        end = (starts[-1] + self.partial_frames) * self.hop_length
        if waveform.size < end:
            waveform = np.pad(waveform, (0, end - waveform.size))
        transform = _mel_spectrogram(int(self.sampling_rate), self.n_fft, self.hop_length, int(self.num_mel_bins),
                                     self.pad_mode)
        with torch.no_grad():
            mel = transform(torch.tensor(waveform, dtype=torch.float32)).T.numpy()  # (frames, bands)
        return np.stack([mel[s : s + self.partial_frames] for s in starts]).astype(np.float32)

    def __call__(
        self,
        raw_speech: Union[np.ndarray, list[float], list[np.ndarray], list[list[float]]],
        sampling_rate: Optional[int] = None,
        padding: Union[bool, str] = "longest",
        return_attention_mask: Optional[bool] = None,
        return_tensors: Optional[Union[str, TensorType]] = None,
        **kwargs,
    ) -> BatchFeature:
        """Windows of one clip (1-D) or a batch (a list of 1-D arrays, or a 2-D array of equal-length clips),
        padded to the clip with the most windows (the only padding there is)."""
        if sampling_rate is not None and sampling_rate != self.sampling_rate:
            raise ValueError(
                f"{type(self).__name__} expects audio at {self.sampling_rate} Hz, got {sampling_rate} Hz; "
                "resample first."
            )
        if padding not in (True, "longest"):
            raise ValueError(f"{type(self).__name__} pads to the clip with the most windows; got padding={padding!r}.")
        is_batched = (isinstance(raw_speech, np.ndarray) and raw_speech.ndim > 1) or (
            isinstance(raw_speech, (list, tuple)) and len(raw_speech) > 0
            and isinstance(raw_speech[0], (np.ndarray, list, tuple))
        )
        if isinstance(raw_speech, np.ndarray) and raw_speech.ndim > 2:
            raise ValueError(f"{type(self).__name__} takes mono audio; got an array of shape {raw_speech.shape}.")
        windows = [self.partials(np.asarray(clip)) for clip in (list(raw_speech) if is_batched else [raw_speech])]
        most = max(w.shape[0] for w in windows)
        values = np.zeros((len(windows), most, self.partial_frames, self.num_mel_bins), dtype=np.float32)
        values += np.float32(self.padding_value)
        mask = np.zeros((len(windows), most), dtype=np.int32)
        for i, w in enumerate(windows):
            values[i, : w.shape[0]] = w
            mask[i, : w.shape[0]] = 1
        data = {"input_values": values}
        if self.return_attention_mask if return_attention_mask is None else return_attention_mask:
            data["attention_mask"] = mask
        return BatchFeature(data, tensor_type=return_tensors)


__all__ = ["GE2EFeatureExtractor", "normalize_volume"]
