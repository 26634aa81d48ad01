"""What the data layer noticed while preparing a run, kept as data as well as logged.

A warning that lives only in the log is gone once the terminal closes; the run writes this report
into run_summary.json (and from there the metrics and the model card), so that a model trained on
data with skipped clips, a class absent from test or speakers shared between splits says so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("hf_mtkd")


@dataclass
class DataReport:
    """Warnings, skipped and truncated clips per split, and the speakers drawn into a split."""

    warnings: list[str] = field(default_factory=list)
    # split -> "file: reason" of each clip dropped under on_bad_audio: skip or on_missing_text: skip (empty list:
    # none).
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

    def skipped_count(self, split: str) -> int:
        """Clips of `split` dropped under on_bad_audio or on_missing_text: skip (0 when none were, or skipping was
        off)."""
        return len(self.skipped_clips.get(split, ()))

    def to_dict(self) -> dict:
        """The JSON form written into run_summary.json (`data_report`): counts of skipped clips per split, and the
        skipped and truncated files (with reasons) only for the splits that have some."""
        return {
            "warnings": list(self.warnings),
            "skipped_clips": {split: len(names) for split, names in self.skipped_clips.items()},
            "skipped_files": {split: list(names) for split, names in self.skipped_clips.items() if names},
            "truncated_files": {split: list(names) for split, names in self.truncated_clips.items() if names},
            "drawn_speakers": {role: list(names) for role, names in self.drawn_speakers.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "DataReport":
        """The report back from `to_dict`'s form (a finished run's run_summary.json); a count of skipped clips
        that disagrees with the files listed for its split is a ValueError."""
        files = data.get("skipped_files") or {}
        skipped = {}
        for split, count in (data.get("skipped_clips") or {}).items():
            skipped[split] = list(files.get(split, ()))
            if len(skipped[split]) != count:
                raise ValueError(f"data_report: skipped_clips says {count} for {split!r} but skipped_files lists "
                                 f"{len(skipped[split])}.")
        return cls(
            warnings=list(data.get("warnings") or ()),
            skipped_clips=skipped,
            truncated_clips={split: list(names) for split, names in (data.get("truncated_files") or {}).items()},
            drawn_speakers={role: list(names) for role, names in (data.get("drawn_speakers") or {}).items()},
        )


def first_few(items, n: int = 5) -> str:
    """`a, b, c (and 7 more)`: long lists in messages stay readable."""
    items = list(items)
    shown = ", ".join(str(item) for item in items[:n])
    return shown + (f" (and {len(items) - n} more)" if len(items) > n else "")
