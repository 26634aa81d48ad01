"""Settings of the classic floor (to become `method: classic_baseline` on the method registry)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .features import FEATURE_SETS
from .model import DEFAULT_C_GRID


@dataclass
class ClassicBaselineArguments:
    classic_feature_set: str = field(
        default="mfcc",
        metadata={
            "help": "Utterance statistics: 'mfcc' (mean/std/delta-std of 20 MFCCs, torchaudio) or 'egemaps' "
            "(88 eGeMAPS v02 functionals; needs pip install 'hf_mtkd[classic]') or 'ge2e' (mean/std of the frozen "
            "pretrained GE2E voice encoder's window embeddings, a pretrained floor; needs pip install "
            "'hf_mtkd[ge2e]')."
        },
    )
    classic_c_grid: list[float] = field(
        default_factory=lambda: list(DEFAULT_C_GRID),
        metadata={"help": "Inverse regularisation strengths tried; the one with the best validation UR is kept."},
    )
    classic_sampling_rate: int = field(
        default=16000, metadata={"help": "Rate (Hz) the audio is decoded at for the classic features."}
    )
    classic_class_weight: Optional[str] = field(
        default="balanced",
        metadata={"help": "'balanced' (weights classes inversely to their frequency, as UR does) or null (none)."},
    )

    def __post_init__(self):
        if self.classic_feature_set not in FEATURE_SETS:
            raise ValueError(f"classic_feature_set must be one of {FEATURE_SETS}, got {self.classic_feature_set!r}.")
        if not self.classic_c_grid or any(float(c) <= 0 for c in self.classic_c_grid):
            raise ValueError(f"classic_c_grid must be a non-empty list of positive numbers, got "
                             f"{self.classic_c_grid}.")
        if self.classic_sampling_rate < 1000:
            raise ValueError(f"classic_sampling_rate must be >= 1000 Hz, got {self.classic_sampling_rate}.")
        if self.classic_class_weight not in ("balanced", None):
            raise ValueError(f"classic_class_weight must be 'balanced' or null, got {self.classic_class_weight!r}.")
