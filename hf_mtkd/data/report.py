"""What the data layer noticed while preparing a run, kept as data as well as logged.

A warning that lives only in the log is gone once the terminal closes; the run writes this report
into run_summary.json (and from there the metrics and the model card), so that a model trained on
data with skipped clips, a class absent from test or speakers shared between splits says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

logger = logging.getLogger("hf_mtkd")


@dataclass
class DataReport:
    """Warnings, skipped and truncated clips per split, and the speakers drawn into a split."""

    warnings: list[str] = field(default_factory=list)
    # split -> "file: reason" of each clip dropped under on_bad_audio: skip (empty list: none dropped).
    skipped_clips: dict[str, list[str]] = field(default_factory=dict)
    # split -> message naming each WAV file that holds less audio than its header declares.
    truncated_clips: dict[str, list[str]] = field(default_factory=dict)
    # role ("validation", "test") -> speakers moved out of the training data by the seeded draw.
    drawn_speakers: dict[str, list[str]] = field(default_factory=dict)

    def warn(self, message: str) -> None:
        """Log `message` at WARNING and keep it (once: a check that runs twice adds it once)."""
        if message not in self.warnings:
            logger.warning(message)
            self.warnings.append(message)

    def as_dict(self) -> dict:
        """The JSON form written into run_summary.json."""
        return {
            "warnings": list(self.warnings),
            "skipped_clips": {split: len(names) for split, names in self.skipped_clips.items()},
            "skipped_files": {split: list(names) for split, names in self.skipped_clips.items() if names},
            "truncated_files": {split: list(names) for split, names in self.truncated_clips.items() if names},
            "drawn_speakers": {role: list(names) for role, names in self.drawn_speakers.items()},
        }


def first_few(items, n: int = 5) -> str:
    """`a, b, c (and 7 more)`: long lists in messages stay readable."""
    items = list(items)
    shown = ", ".join(str(item) for item in items[:n])
    return shown + (f" (and {len(items) - n} more)" if len(items) > n else "")
