"""Utterance-level acoustic statistics for the classic floor: one fixed-size vector per clip.

`mfcc` (torchaudio): per MFCC coefficient, the mean and standard deviation over frames and the
standard deviation of its deltas. `egemaps` (the optional `opensmile` package): the 88 eGeMAPS v02
functionals. `ge2e`: the mean and standard deviation of the frozen pretrained GE2E voice encoder's window
embeddings (hf_mtkd.models.ge2e, weights from the `resemblyzer` wheel: `pip install 'hf_mtkd[ge2e]'`), a
pretrained floor. `split_features` stores the vectors in a `datasets` column, so they are computed once
per split and read back from the datasets cache afterwards (opensmile costs ~0.1 s per clip).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
from datasets import Dataset, Features, List, Value

from ..data.preprocessing import WAVEFORM

FEATURES = "classic_features"
FEATURE_SETS = ("mfcc", "egemaps", "ge2e")


@dataclass(frozen=True)
class MfccSettings:
    """The MFCC front end: 25 ms Hann frames every 10 ms (at 16 kHz: n_fft 400, hop 160), 40 mel bands."""

    n_mfcc: int = 20
    n_mels: int = 40
    frame_seconds: float = 0.025
    hop_seconds: float = 0.010
    delta_window: int = 5

    def __post_init__(self):
        if not 0 < self.n_mfcc <= self.n_mels:
            raise ValueError(f"n_mfcc must be in 1..n_mels ({self.n_mels}), got {self.n_mfcc}.")
        if self.frame_seconds <= 0 or self.hop_seconds <= 0:
            raise ValueError(f"frame_seconds and hop_seconds must be > 0, got {self.frame_seconds}, "
                             f"{self.hop_seconds}.")
        if self.delta_window < 3 or self.delta_window % 2 == 0:
            raise ValueError(f"delta_window must be odd and >= 3, got {self.delta_window}.")


@lru_cache(maxsize=8)
def _mfcc_transform(sampling_rate: int, settings: MfccSettings):
    import torchaudio

    n_fft = int(round(settings.frame_seconds * sampling_rate))
    return torchaudio.transforms.MFCC(
        sample_rate=sampling_rate,
        n_mfcc=settings.n_mfcc,
        # center=False: every frame lies inside the clip (no reflected edges in the statistics).
        melkwargs={"n_fft": n_fft, "hop_length": int(round(settings.hop_seconds * sampling_rate)),
                   "n_mels": settings.n_mels, "center": False},
    )


def mfcc_statistics(waveform: np.ndarray, sampling_rate: int, settings: MfccSettings = MfccSettings()) -> np.ndarray:
    """[mean of each MFCC, std of each MFCC, std of each delta] over the clip's frames (3 x n_mfcc floats)."""
    import torch
    import torchaudio

    transform = _mfcc_transform(int(sampling_rate), settings)
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.size < transform.MelSpectrogram.spectrogram.n_fft:  # shorter than one frame: one zero-padded frame
        waveform = np.pad(waveform, (0, transform.MelSpectrogram.spectrogram.n_fft - waveform.size))
    with torch.no_grad():
        mfcc = transform(torch.from_numpy(waveform))  # (n_mfcc, frames)
        deltas = torchaudio.functional.compute_deltas(mfcc.unsqueeze(0), win_length=settings.delta_window)[0]
    stats = [mfcc.mean(dim=1), mfcc.std(dim=1, unbiased=False), deltas.std(dim=1, unbiased=False)]
    return torch.cat(stats).numpy().astype(np.float32)


@lru_cache(maxsize=1)
def _egemaps_extractor():
    try:
        import opensmile
    except ImportError as err:
        raise ImportError(
            "feature_set 'egemaps' needs the opensmile package: pip install 'hf_mtkd[classic]' (or pip install "
            "opensmile)."
        ) from err
    return opensmile.Smile(
        feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.Functionals
    )


def egemaps_functionals(waveform: np.ndarray, sampling_rate: int) -> np.ndarray:
    """The 88 eGeMAPS v02 functionals of one clip (opensmile)."""
    frame = _egemaps_extractor().process_signal(np.asarray(waveform, dtype=np.float32), int(sampling_rate))
    return frame.to_numpy(dtype=np.float32).reshape(-1)


@lru_cache(maxsize=1)
def _ge2e_encoder():
    import torch

    from ..models.ge2e import GE2EConfig, GE2EFeatureExtractor, GE2EModel

    torch.manual_seed(0)  # nothing random is used (the encoder is the wheel's), but keep construction deterministic
    return GE2EModel(GE2EConfig(pretrained_encoder="resemblyzer")).eval(), GE2EFeatureExtractor()


def ge2e_statistics(waveform: np.ndarray, sampling_rate: int) -> np.ndarray:
    """[mean, std] of the frozen pretrained GE2E encoder's window embeddings of one clip (2 x 256 floats)."""
    import torch

    from ..data.audio import resample
    from ..models.ge2e.modeling_ge2e import window_statistics

    encoder, feature_extractor = _ge2e_encoder()
    waveform = resample(np.asarray(waveform, dtype=np.float32), int(sampling_rate), feature_extractor.sampling_rate)
    inputs = feature_extractor(waveform, sampling_rate=feature_extractor.sampling_rate, return_tensors="pt")
    with torch.no_grad():
        return window_statistics(*encoder(**inputs))[0].numpy().astype(np.float32)


def clip_features(waveform: np.ndarray, sampling_rate: int, feature_set: str = "mfcc",
                  mfcc_settings: MfccSettings = MfccSettings()) -> np.ndarray:
    check_feature_set(feature_set)
    if feature_set == "mfcc":
        return mfcc_statistics(waveform, sampling_rate, mfcc_settings)
    if feature_set == "ge2e":
        return ge2e_statistics(waveform, sampling_rate)
    return egemaps_functionals(waveform, sampling_rate)


def check_feature_set(feature_set: str) -> None:
    if feature_set not in FEATURE_SETS:
        raise ValueError(f"feature_set must be one of {FEATURE_SETS}, got {feature_set!r}.")


def split_features(dataset: Dataset, sampling_rate: int, feature_set: str = "mfcc",
                   mfcc_settings: MfccSettings = MfccSettings()) -> np.ndarray:
    """(N, D) float32 features of a prepared split (its `waveform` column at `sampling_rate`), in row order."""
    check_feature_set(feature_set)
    if WAVEFORM not in dataset.column_names:
        raise ValueError(f"The split has no {WAVEFORM!r} column (columns: {dataset.column_names}); "
                         "pass a split prepared by hf_mtkd.data.prepare_audio_dataset.")
    key = {"split": dataset._fingerprint, "rate": int(sampling_rate), "features": feature_set, "version": 1}
    if feature_set == "mfcc":
        key["mfcc"] = asdict(mfcc_settings)
    fingerprint = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]

    def batch_features(batch):
        return {
            FEATURES: [
                clip_features(np.asarray(w), sampling_rate, feature_set, mfcc_settings) for w in batch[WAVEFORM]
            ]
        }

    with_features = dataset.with_format(None).map(
        batch_features,
        batched=True,
        batch_size=32,
        remove_columns=dataset.column_names,
        features=Features({FEATURES: List(Value("float32"))}),
        new_fingerprint=fingerprint,
        desc=f"{feature_set} statistics",
    )
    return np.asarray(with_features.with_format("numpy")[FEATURES], dtype=np.float32)
