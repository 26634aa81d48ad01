"""Decoding one clip: any container/codec FFmpeg reads, resampled and downmixed on decode.

torchcodec (the decoder `datasets.Audio` itself uses) resamples with FFmpeg's swresample
in the decoding call, which is faster than decoding at the native rate and resampling
afterwards in Python.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Optional

import numpy as np

from ..corpora.base import AUDIO_EXTENSIONS
from .wav_header import wav_shortfall


_DECODE_MARGIN_SECONDS = 1.0


def has_audio_extension(name: str) -> bool:
    """Whether a file name ends in one of AUDIO_EXTENSIONS (case-insensitive)."""
    return name.rpartition(".")[2].lower() in AUDIO_EXTENSIONS if "." in name else False


class AudioDecodeError(ValueError):
    """A clip that cannot be used: unreadable, empty, or with non-finite samples. Names the file."""


class TruncatedAudioWarning(UserWarning):
    """A WAV file holds less audio than its header declares; what is there was decoded."""


def describe_audio_source(audio: Any) -> str:
    """A human-readable name for an audio cell (path when known)."""
    if isinstance(audio, dict):
        if audio.get("path"):
            return str(audio["path"])
        if audio.get("bytes") is not None:
            return f"<{len(audio['bytes'])} bytes of embedded audio>"
        if audio.get("array") is not None:
            return "<in-memory array>"
    if isinstance(audio, (str, bytes)):
        return audio if isinstance(audio, str) else f"<{len(audio)} bytes>"
    return repr(audio)[:80]


def decode_audio(audio: Any, sampling_rate: int, max_seconds: float | None = None,
                 on_truncated: Optional[Callable[[str], None]] = None) -> np.ndarray:
    """Return a float32 mono waveform at `sampling_rate` from a datasets audio cell.

    Accepts a path, raw bytes, or a dict with path/bytes (datasets `Audio(decode=False)`)
    or array/sampling_rate (an already-decoded cell). Raises AudioDecodeError naming the file.
    With `max_seconds`, only the start of a file is decoded (an hour-long recording costs what
    its first seconds cost) and the result holds at most `max_seconds` of audio.
    A WAV file holding less audio than its header declares is decoded as far as it goes and reported,
    by a message naming the file, to `on_truncated` (default: a TruncatedAudioWarning).
    """
    from torchcodec.decoders import AudioDecoder

    name = describe_audio_source(audio)
    try:
        if isinstance(audio, dict) and audio.get("array") is not None:
            waveform = _from_array(audio["array"], audio.get("sampling_rate"), sampling_rate)
        else:
            source = audio
            if isinstance(audio, dict):
                source = audio["bytes"] if audio.get("bytes") is not None else audio.get("path")
            if source is None:
                raise AudioDecodeError("no path and no bytes")
            if isinstance(source, (bytes, bytearray)):
                source = bytes(source)
            # Downmix by averaging channels ourselves: FFmpeg's stereo->mono matrix adds +3 dB.
            decoder = AudioDecoder(source, sample_rate=sampling_rate)
            if max_seconds is None:
                samples = decoder.get_all_samples()
            else:
                # A margin past the crop: some codecs (MP3) start with priming samples the range skips.
                samples = decoder.get_samples_played_in_range(0.0, max_seconds + _DECODE_MARGIN_SECONDS)
            waveform = samples.data.mean(dim=0).numpy().astype(np.float32, copy=False)
            shortfall = wav_shortfall(source)
            if shortfall is not None:
                message = f"{name}: truncated WAV file ({shortfall.describe()}); decoded what is there"
                if on_truncated is None:
                    warnings.warn(message, TruncatedAudioWarning, stacklevel=2)
                else:
                    on_truncated(message)
        if max_seconds is not None:
            waveform = waveform[: int(round(max_seconds * sampling_rate))]
    except AudioDecodeError as err:
        raise AudioDecodeError(f"{name}: {err}") from err
    except (RuntimeError, ValueError, OSError) as err:
        # torchcodec reports every FFmpeg failure (corrupt header, empty file, no frames) as RuntimeError.
        raise AudioDecodeError(f"{name}: cannot decode audio ({err})") from err
    if waveform.size == 0:
        raise AudioDecodeError(f"{name}: zero-length clip")
    if not np.isfinite(waveform).all():
        raise AudioDecodeError(f"{name}: contains NaN or infinite samples")
    return waveform


def as_sampling_rate(value: Any, what: str = "sampling_rate") -> int:
    """A rate in Hz as an int; a fraction, a bool, text or a rate <= 0 is a ValueError naming `what`.

    (torchaudio's resampler rejects fractional rates with a message that names neither argument, and
    takes True for 1 Hz.)
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{what} must be a positive whole number of Hz, got {value!r} ({type(value).__name__}).")
    if not np.isfinite(value) or value <= 0 or float(value) != int(value):
        raise ValueError(f"{what} must be a positive whole number of Hz, got {value!r}.")
    return int(value)


def _from_array(array: Any, source_rate: int | None, target_rate: int) -> np.ndarray:
    waveform = np.asarray(array, dtype=np.float32)
    if waveform.ndim == 2:  # (channels, time) or (time, channels): average the shorter axis
        channel_axis = 0 if waveform.shape[0] <= waveform.shape[1] else 1
        waveform = waveform.mean(axis=channel_axis)
    if waveform.ndim != 1:
        raise AudioDecodeError(f"expected a 1-D or 2-D array, got shape {waveform.shape}")
    if source_rate is None:
        raise AudioDecodeError("array given without sampling_rate")
    return resample(waveform, as_sampling_rate(source_rate), target_rate)


def resample(waveform: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Band-limited resampling of an in-memory waveform (torchaudio's windowed-sinc)."""
    if source_rate == target_rate or waveform.size == 0:
        return waveform
    import torch
    import torchaudio.functional as F

    return F.resample(torch.from_numpy(np.ascontiguousarray(waveform)), source_rate, target_rate).numpy()


def crop(waveform: np.ndarray, max_samples: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Keep at most `max_samples`: the start, or a random window when `rng` is given."""
    if waveform.shape[-1] <= max_samples:
        return waveform
    start = 0 if rng is None else int(rng.integers(0, waveform.shape[-1] - max_samples + 1))
    return waveform[start : start + max_samples]
